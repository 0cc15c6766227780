// librdkafka for OutboxKafka. Only OutboxKafka imports this module.
//
// Variadic C functions do not import into Swift, so the few calls that need an argument list are
// wrapped here as static inline functions over rd_kafka_produceva's array form.
#ifndef OUTBOX_CRDKAFKA_SHIM_H
#define OUTBOX_CRDKAFKA_SHIM_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdint.h>
#include <string.h>

/// Produces one message, copying key and value. On success librdkafka owns `headers`; on failure
/// the caller still does. `key` may be NULL (no key) and `value_len` may be 0.
static inline rd_kafka_error_t *outbox_kafka_produce(rd_kafka_t *rk, const char *topic,
                                                     const void *key, size_t key_len,
                                                     const void *value, size_t value_len,
                                                     rd_kafka_headers_t *headers,
                                                     uint64_t token) {
    rd_kafka_vu_t vus[6];
    size_t count = 0;
    memset(vus, 0, sizeof(vus));
    vus[count].vtype = RD_KAFKA_VTYPE_TOPIC;
    vus[count].u.cstr = topic;
    count++;
    if (key != NULL) {
        vus[count].vtype = RD_KAFKA_VTYPE_KEY;
        vus[count].u.mem.ptr = (void *)key;
        vus[count].u.mem.size = key_len;
        count++;
    }
    vus[count].vtype = RD_KAFKA_VTYPE_VALUE;
    vus[count].u.mem.ptr = (void *)value;
    vus[count].u.mem.size = value_len;
    count++;
    vus[count].vtype = RD_KAFKA_VTYPE_HEADERS;
    vus[count].u.headers = headers;
    count++;
    // The per-message opaque is a plain integer token: nothing is allocated per message.
    vus[count].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vus[count].u.ptr = (void *)(uintptr_t)token;
    count++;
    vus[count].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vus[count].u.i = RD_KAFKA_MSG_F_COPY;
    count++;
    return rd_kafka_produceva(rk, vus, count);
}

/// The token given to outbox_kafka_produce, read back from a delivery report.
static inline uint64_t outbox_kafka_message_token(const rd_kafka_message_t *message) {
    return (uint64_t)(uintptr_t)message->_private;
}

#endif
