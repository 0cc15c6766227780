// rabbitmq-c (librabbitmq) for OutboxAMQP. Only OutboxAMQP imports this module.
//
// Variadic C functions do not import into Swift, and AMQP's tables and frames are unions: the few
// calls OutboxAMQP needs are wrapped here, with plain C types at the boundary.
#ifndef OUTBOX_CRABBITMQ_SHIM_H
#define OUTBOX_CRABBITMQ_SHIM_H

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/// Logs in with user name and password (SASL PLAIN).
static inline amqp_rpc_reply_t outbox_amqp_login(amqp_connection_state_t state, const char *vhost, int heartbeat_seconds,
                                                 const char *user, const char *password) {
    return amqp_login(state, vhost, 0, AMQP_DEFAULT_FRAME_SIZE, heartbeat_seconds, AMQP_SASL_METHOD_PLAIN, user, password);
}

/// Publishes one persistent message with `mandatory` set: `message_id`, optional `type`, and
/// `header_count` UTF-8 headers. Everything is copied into the connection's buffer before this
/// returns. Returns an amqp_status_enum.
static inline int outbox_amqp_publish(amqp_connection_state_t state, amqp_channel_t channel, const char *exchange,
                                      const void *routing_key, size_t routing_key_length, const char *message_id,
                                      const char *type, const char *const *header_names, const char *const *header_values,
                                      int header_count, const void *body, size_t body_length) {
    amqp_basic_properties_t properties;
    memset(&properties, 0, sizeof(properties));
    properties._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
    properties.delivery_mode = 2;  // persistent
    properties.message_id = amqp_cstring_bytes(message_id);
    if (type != NULL) {
        properties._flags |= AMQP_BASIC_TYPE_FLAG;
        properties.type = amqp_cstring_bytes(type);
    }
    amqp_table_entry_t *entries = NULL;
    if (header_count > 0) {
        entries = (amqp_table_entry_t *)calloc((size_t)header_count, sizeof(amqp_table_entry_t));
        if (entries == NULL) return AMQP_STATUS_NO_MEMORY;
        for (int index = 0; index < header_count; index++) {
            entries[index].key = amqp_cstring_bytes(header_names[index]);
            entries[index].value.kind = AMQP_FIELD_KIND_UTF8;
            entries[index].value.value.bytes = amqp_cstring_bytes(header_values[index]);
        }
        properties._flags |= AMQP_BASIC_HEADERS_FLAG;
        properties.headers.num_entries = header_count;
        properties.headers.entries = entries;
    }
    amqp_bytes_t key = {routing_key_length, (void *)routing_key};
    amqp_bytes_t content = {body_length, (void *)body};
    int status = amqp_basic_publish(state, channel, amqp_cstring_bytes(exchange), key, 1, 0, &properties, content);
    free(entries);
    return status;
}

/// What the broker said, as `outbox_amqp_next_event` reports it.
enum outbox_amqp_event_kind {
    OUTBOX_AMQP_NOTHING = 0,         // no frame within the timeout
    OUTBOX_AMQP_ACK = 1,             // publisher confirm: stored (up to delivery_tag when multiple)
    OUTBOX_AMQP_NACK = 2,            // publisher confirm: the broker could not take it
    OUTBOX_AMQP_RETURN = 3,          // a mandatory message no queue took (its ack follows)
    OUTBOX_AMQP_CHANNEL_CLOSED = 4,  // the broker closed the channel (answered close-ok)
    OUTBOX_AMQP_CONNECTION_LOST = 5, // connection closed by the broker or broken
    OUTBOX_AMQP_OTHER = 6,           // a frame of no interest
};

typedef struct {
    int kind;
    uint16_t channel;
    uint64_t delivery_tag;
    int multiple;
    uint16_t reply_code;
    char text[256];        // reply text (broker's words, no message content)
    char message_id[128];  // of a returned message
} outbox_amqp_event;

static inline void outbox_amqp_copy(char *target, size_t capacity, amqp_bytes_t bytes) {
    size_t length = bytes.len < capacity - 1 ? bytes.len : capacity - 1;
    if (length > 0 && bytes.bytes != NULL) memcpy(target, bytes.bytes, length);
    target[length] = '\0';
}

/// Waits up to `timeout_ms` (0: only what is buffered) for one frame and reports it.
static inline void outbox_amqp_next_event(amqp_connection_state_t state, int timeout_ms, outbox_amqp_event *event) {
    memset(event, 0, sizeof(*event));
    amqp_frame_t frame;
    struct timeval timeout = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int status = amqp_simple_wait_frame_noblock(state, &frame, &timeout);
    if (status == AMQP_STATUS_TIMEOUT) { event->kind = OUTBOX_AMQP_NOTHING; return; }
    if (status != AMQP_STATUS_OK) {
        event->kind = OUTBOX_AMQP_CONNECTION_LOST;
        snprintf(event->text, sizeof(event->text), "%s", amqp_error_string2(status));
        return;
    }
    event->channel = frame.channel;
    if (frame.frame_type != AMQP_FRAME_METHOD) { event->kind = OUTBOX_AMQP_OTHER; return; }
    switch (frame.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        amqp_basic_ack_t *ack = (amqp_basic_ack_t *)frame.payload.method.decoded;
        event->kind = OUTBOX_AMQP_ACK;
        event->delivery_tag = ack->delivery_tag;
        event->multiple = ack->multiple;
        return;
    }
    case AMQP_BASIC_NACK_METHOD: {
        amqp_basic_nack_t *nack = (amqp_basic_nack_t *)frame.payload.method.decoded;
        event->kind = OUTBOX_AMQP_NACK;
        event->delivery_tag = nack->delivery_tag;
        event->multiple = nack->multiple;
        return;
    }
    case AMQP_BASIC_RETURN_METHOD: {
        amqp_basic_return_t *returned = (amqp_basic_return_t *)frame.payload.method.decoded;
        event->kind = OUTBOX_AMQP_RETURN;
        event->reply_code = returned->reply_code;
        outbox_amqp_copy(event->text, sizeof(event->text), returned->reply_text);
        amqp_message_t message;
        amqp_rpc_reply_t read = amqp_read_message(state, frame.channel, &message, 0);
        if (read.reply_type == AMQP_RESPONSE_NORMAL) {
            if (message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
                outbox_amqp_copy(event->message_id, sizeof(event->message_id), message.properties.message_id);
            }
            amqp_destroy_message(&message);
        }
        return;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
        amqp_channel_close_t *close = (amqp_channel_close_t *)frame.payload.method.decoded;
        event->kind = OUTBOX_AMQP_CHANNEL_CLOSED;
        event->reply_code = close->reply_code;
        outbox_amqp_copy(event->text, sizeof(event->text), close->reply_text);
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(state, frame.channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        return;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_connection_close_t *close = (amqp_connection_close_t *)frame.payload.method.decoded;
        event->kind = OUTBOX_AMQP_CONNECTION_LOST;
        event->reply_code = close->reply_code;
        outbox_amqp_copy(event->text, sizeof(event->text), close->reply_text);
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        return;
    }
    default:
        event->kind = OUTBOX_AMQP_OTHER;
        return;
    }
}

/// The broker's reply to a synchronous call, as code and text (0 and "" when it succeeded).
static inline uint16_t outbox_amqp_reply_code(amqp_rpc_reply_t reply, char *text, size_t capacity) {
    text[0] = '\0';
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) return 0;
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        snprintf(text, capacity, "%s", amqp_error_string2(reply.library_error));
        return 1;
    }
    if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
        if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *close = (amqp_channel_close_t *)reply.reply.decoded;
            outbox_amqp_copy(text, capacity, close->reply_text);
            return close->reply_code;
        }
        if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *close = (amqp_connection_close_t *)reply.reply.decoded;
            outbox_amqp_copy(text, capacity, close->reply_text);
            return close->reply_code;
        }
    }
    snprintf(text, capacity, "no reply");
    return 2;
}

/// Answers a channel close the broker sent in reply to a synchronous call, so the channel
/// number can be opened again.
static inline void outbox_amqp_close_ok(amqp_connection_state_t state, amqp_channel_t channel) {
    amqp_channel_close_ok_t ok = {0};
    amqp_send_method(state, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
}

#endif
