/* server.c - metastore-server wiring (in progress). */
#include "api/server.h"
#include "util/log.h"

void ms_server_config_default(struct ms_server_config *c)
{
    *c = (struct ms_server_config){
        .name = "default",
        .data_dir = "metastore.data",
        .listen_client_url = "http://127.0.0.1:2379",
        .listen_peer_url = "http://127.0.0.1:2380",
        .initial_cluster = NULL,
        .heartbeat_ms = 100,
        .election_ms = 1000,
        .snapshot_count = 10000,
        .max_request_bytes = 1572864,
        .max_connections = 1024,
        .backend = MS_BACKEND_MEMORY,
        .codec = MS_CODEC_PROTOBUF,
        .request_timeout_ms = 5000,
    };
    ms_batch_config_default(&c->batch);
}

int ms_server_run(const struct ms_server_config *c)
{
    (void)c;
    ms_error("metastore-server: not implemented yet");
    return 1;
}
