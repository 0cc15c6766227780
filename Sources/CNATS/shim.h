// The NATS C client (libnats, with JetStream) for OutboxNATS. Only OutboxNATS imports this module.
#ifndef OUTBOX_CNATS_SHIM_H
#define OUTBOX_CNATS_SHIM_H

#include <nats/nats.h>

#endif
