/*
 * What the files of service/rpc share; not a contract for anyone else.
 */
#ifndef KM_RPC_INTERNAL_H
#define KM_RPC_INTERNAL_H

#include <grpc/grpc.h>

#include "km_rpc.h"

struct km_rpc_tls_state;

/* rpc_tls.c: server credentials for o, whose files are read now (an
 * error names the file and the key of the config) and again when they
 * change. *state must outlive the server; free it after. */
int km_rpc_tls_credentials(const struct km_rpc_tls *o,
			   struct km_rpc_tls_state **state,
			   grpc_server_credentials **creds,
			   struct km_error *err);
void km_rpc_tls_free(struct km_rpc_tls_state *t);

#endif
