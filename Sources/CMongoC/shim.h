// The MongoDB C driver (libmongoc 1.23) for OutboxMongo. Only OutboxMongo imports this module.
//
// libbson's bson_t must be 128-byte aligned and must outlive every call that reads it, which Swift
// memory does not promise. So no bson_t ever lives in Swift: Swift hands over finished BSON bytes,
// these functions wrap them in heap bson_t's for the duration of one call, and replies come back
// in heap bson_t's that Swift copies out (bson_get_data) and frees with outbox_bson_free.
#ifndef OUTBOX_CMONGOC_SHIM_H
#define OUTBOX_CMONGOC_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <mongoc/mongoc.h>

/// An empty reply document in 128-byte-aligned heap storage, initialised like a stack bson_t
/// (so bson_destroy releases its contents, not the storage); free with outbox_bson_free.
static inline void *outbox_bson_new_reply(void) {
    bson_t *document = aligned_alloc(128, sizeof(bson_t));
    if (document) bson_init(document);
    return document;
}

/// Frees a document from outbox_bson_new_reply (whatever the driver wrote into it).
static inline void outbox_bson_free(void *document) {
    if (!document) return;
    bson_destroy((bson_t *)document);
    free(document);
}

static inline const uint8_t *outbox_bson_bytes(const void *document) { return bson_get_data((const bson_t *)document); }
static inline uint32_t outbox_bson_length(const void *document) { return ((const bson_t *)document)->len; }

/// Runs one command. `opts` may be NULL; `session`, when not NULL, is appended to the options
/// (with its transaction fields). `reply` must come from outbox_bson_new_reply; the driver
/// re-initialises it, so it is destroyed first.
static inline bool outbox_mongoc_command(mongoc_client_t *client, const char *database,
                                         const uint8_t *command, size_t command_length,
                                         const uint8_t *opts, size_t opts_length,
                                         mongoc_client_session_t *session,
                                         void *reply_storage, bson_error_t *error) {
    bson_t *reply = (bson_t *)reply_storage;
    bson_t *command_document = bson_new_from_data(command, command_length);
    bson_t *opts_document = opts ? bson_new_from_data(opts, opts_length) : bson_new();
    if (!command_document || !opts_document) {
        bson_set_error(error, MONGOC_ERROR_BSON, MONGOC_ERROR_BSON_INVALID, "invalid BSON handed to the driver");
        if (command_document) bson_destroy(command_document);
        if (opts_document) bson_destroy(opts_document);
        return false;
    }
    if (session && !mongoc_client_session_append(session, opts_document, error)) {
        bson_destroy(command_document);
        bson_destroy(opts_document);
        return false;
    }
    bson_destroy(reply);
    bool ok = mongoc_client_command_with_opts(client, database, command_document, NULL, opts_document, reply, error);
    bson_destroy(command_document);
    bson_destroy(opts_document);
    return ok;
}

/// Starts a transaction with snapshot reads and majority writes.
static inline bool outbox_mongoc_start_transaction(mongoc_client_session_t *session, bson_error_t *error) {
    mongoc_transaction_opt_t *opts = mongoc_transaction_opts_new();
    mongoc_read_concern_t *read_concern = mongoc_read_concern_new();
    mongoc_write_concern_t *write_concern = mongoc_write_concern_new();
    mongoc_read_concern_set_level(read_concern, MONGOC_READ_CONCERN_LEVEL_SNAPSHOT);
    mongoc_write_concern_set_w(write_concern, MONGOC_WRITE_CONCERN_W_MAJORITY);
    mongoc_transaction_opts_set_read_concern(opts, read_concern);
    mongoc_transaction_opts_set_write_concern(opts, write_concern);
    bool ok = mongoc_client_session_start_transaction(session, opts, error);
    mongoc_read_concern_destroy(read_concern);
    mongoc_write_concern_destroy(write_concern);
    mongoc_transaction_opts_destroy(opts);
    return ok;
}

/// Commits; `reply` from outbox_bson_new_reply (re-initialised by the driver).
static inline bool outbox_mongoc_commit(mongoc_client_session_t *session, void *reply_storage, bson_error_t *error) {
    bson_t *reply = (bson_t *)reply_storage;
    bson_destroy(reply);
    return mongoc_client_session_commit_transaction(session, reply, error);
}

/// Opens a change stream on one collection for inserts only; NULL when it cannot be created.
static inline mongoc_change_stream_t *outbox_mongoc_watch_inserts(mongoc_client_t *client, const char *database,
                                                                  const char *collection, int64_t max_await_ms) {
    mongoc_collection_t *coll = mongoc_client_get_collection(client, database, collection);
    bson_t *pipeline = BCON_NEW("pipeline", "[", "{", "$match", "{", "operationType", BCON_UTF8("insert"), "}", "}", "]");
    bson_t *opts = BCON_NEW("maxAwaitTimeMS", BCON_INT64(max_await_ms));
    mongoc_change_stream_t *stream = mongoc_collection_watch(coll, pipeline, opts);
    bson_destroy(pipeline);
    bson_destroy(opts);
    mongoc_collection_destroy(coll);
    return stream;
}

/// 1 when an insert arrived, 0 when the wait ended without one, -1 on error (see `error`).
static inline int outbox_mongoc_change_stream_next(mongoc_change_stream_t *stream, bson_error_t *error) {
    const bson_t *event = NULL;
    if (mongoc_change_stream_next(stream, &event)) return 1;
    const bson_t *reply = NULL;
    if (mongoc_change_stream_error_document(stream, error, &reply)) return -1;
    return 0;
}

#endif
