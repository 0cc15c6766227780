// The MariaDB C client (Connector/C) for OutboxMySQL. Only OutboxMySQL imports this module.
//
// `mysql_library_init` is a macro and `mysql_optionsv` is variadic; neither imports into Swift, so
// the two calls that need them are wrapped here.
#ifndef OUTBOX_CMARIADB_SHIM_H
#define OUTBOX_CMARIADB_SHIM_H

#include <stddef.h>
#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>

/// Initialises the client library once per process, before any connection is opened.
static inline int outbox_mysql_library_init(void) {
    return mysql_server_init(0, NULL, NULL);
}

/// Sets an option whose value is an unsigned int (timeouts).
static inline int outbox_mysql_set_uint_option(MYSQL *mysql, enum mysql_option option, unsigned int value) {
    return mysql_options(mysql, option, &value);
}

/// Sets an option whose value is a my_bool (TLS switches).
static inline int outbox_mysql_set_bool_option(MYSQL *mysql, enum mysql_option option, int value) {
    my_bool flag = value ? 1 : 0;
    return mysql_options(mysql, option, &flag);
}

#endif
