#!/usr/bin/env bats
# client-tls.bats - TLS on the client port: a throw-away CA made with
# openssl; curl (HTTP/1.1: gateway and REST) and etcdctl (gRPC, ALPN h2)
# over TLS with and without client certificates; what must be refused
# (another CA, an expired certificate, no client certificate, plain HTTP,
# flags that do not fit) with a clear error; a 3-member cluster whose
# followers forward writes to the leader over TLS. Uses tools/cluster.

load lib

CLUSTER=$BATS_TEST_DIRNAME/../tools/cluster

setup() {
    P=$BATS_TEST_TMPDIR/pki
    DIR=$BATS_TEST_TMPDIR/c
    mkdir -p "$P"
    export MS_BUILD
    mk_ca ca
    mk_ca ca2
    mk_cert ca server server
    mk_cert ca client client
    mk_cert ca2 rogue client
    mk_cert ca expired client -1
    for n in n1 n2 n3; do mk_cert ca "$n" "$n"; done
    OK=(--cacert "$P/ca.crt" --cert "$P/client.crt" --key "$P/client.key")
}

teardown() {
    if [ -n "${PID:-}" ]; then stop_server "$PID" || true; fi
    "$CLUSTER" stop "$DIR" >/dev/null 2>&1 || true
}

# mk_ca NAME: a self-signed CA, $P/NAME.crt and .key
mk_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$P/$1.key" -out "$P/$1.crt" -days 2 -subj "/CN=$1 test CA" 2>/dev/null
}

# mk_cert CA NAME CN [DAYS]: $P/NAME.crt (+ .key) signed by CA, SAN IP
# 127.0.0.1, serverAuth+clientAuth; DAYS -1: already expired.
mk_cert() {
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' >"$P/ext.cnf"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$P/$2.key" -out "$P/$2.csr" -subj "/CN=$3" 2>/dev/null
    openssl x509 -req -in "$P/$2.csr" -CA "$P/$1.crt" -CAkey "$P/$1.key" \
        -CAcreateserial -out "$P/$2.crt" -days "${4:-2}" -extfile "$P/ext.cnf" 2>/dev/null
}

# start_tls NAME [FLAGS...]: one member serving clients on https://;
# sets PORT, URL (https://...), PID, LOG. Waits until /health answers.
start_tls() {
    local name=$1 i
    shift
    PORT=$(free_port)
    URL=https://127.0.0.1:$PORT
    LOG=$BATS_TEST_TMPDIR/$name.log
    "$SERVER" --data-dir "$BATS_TEST_TMPDIR/$name" --listen-client-urls "$URL" \
        --listen-peer-urls "http://127.0.0.1:$((PORT + 1))" \
        --heartbeat-interval 20 --election-timeout 200 \
        --cert-file "$P/server.crt" --key-file "$P/server.key" "$@" >>"$LOG" 2>&1 &
    PID=$!
    for i in $(seq 1 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "${OK[@]}" "$URL/health")" = 200 ] && return 0
        sleep 0.1
    done
    cat "$LOG" >&2
    return 1
}

ectl() { etcdctl --endpoints "$URL" --dial-timeout 2s --command-timeout 3s "$@"; }

@test "curl over TLS: put and get (gateway and REST); plain HTTP on the port is refused and logged" {
    start_tls one --trusted-ca-file "$P/ca.crt"
    run curl -sS --cacert "$P/ca.crt" -X PUT --data-binary v1 "$URL/kv/a"
    assert_success
    assert_output --partial '"revision"'
    run curl -sS --cacert "$P/ca.crt" -X POST -d '{"key":"YQ=="}' "$URL/v3/kv/range"
    assert_success
    assert_output --partial '"value":"djE="'
    # TLS is really on: the handshake shows in s_client, plain HTTP gets nothing
    run bash -c "echo | openssl s_client -connect 127.0.0.1:$PORT -CAfile '$P/ca.crt' 2>&1"
    assert_output --partial 'Verify return code: 0 (ok)'
    assert_output --partial 'TLSv1.3'
    run curl -sS --max-time 3 "http://127.0.0.1:$PORT/kv/a"
    assert_failure 52 # empty reply
    run grep -c "client TLS handshake from 127.0.0.1:[0-9]* failed: handshake: the other side does not speak TLS" "$LOG"
    assert_output 1
    # a client that does not trust our CA refuses us (and we log it)
    run curl -sS --cacert "$P/ca2.crt" "$URL/kv/a"
    assert_failure 60
    grep -q "alert unknown ca" "$LOG"
}

@test "--client-cert-auth: a certificate from the trusted CA is needed; another CA, expired, none are refused at the handshake" {
    start_tls one --trusted-ca-file "$P/ca.crt" --client-cert-auth
    grep -q "serving clients on https://127.0.0.1:$PORT (client certificates required)" "$LOG"
    run curl -sS "${OK[@]}" -X PUT --data-binary v1 "$URL/kv/a"
    assert_success
    run curl -sS "${OK[@]}" "$URL/kv/a"
    assert_output v1
    run curl -sS --cacert "$P/ca.crt" "$URL/kv/a"
    assert_failure
    assert_output --partial 'certificate required'
    grep -q "failed: handshake: peer did not return a certificate" "$LOG"
    run curl -sS --cacert "$P/ca.crt" --cert "$P/rogue.crt" --key "$P/rogue.key" "$URL/kv/a"
    assert_failure
    assert_output --partial 'unknown ca'
    grep -q "failed: certificate verify failed: unable to get local issuer certificate (CN .client.)" "$LOG"
    run curl -sS --cacert "$P/ca.crt" --cert "$P/expired.crt" --key "$P/expired.key" "$URL/kv/a"
    assert_failure
    assert_output --partial 'certificate expired'
    grep -q "certificate verify failed: certificate has expired" "$LOG"
}

@test "etcdctl over TLS (gRPC, ALPN h2): put, get, watch; without a certificate or over plain HTTP it fails" {
    start_tls one --trusted-ca-file "$P/ca.crt" --client-cert-auth
    local T=(--cacert "$P/ca.crt" --cert "$P/client.crt" --key "$P/client.key")
    run ectl "${T[@]}" put foo bar
    assert_success
    assert_output OK
    run ectl "${T[@]}" get foo --print-value-only
    assert_output bar
    # etcdctl itself in the background (not a shell function), without
    # bats' fd 3, ended by timeout at the latest
    timeout 4 etcdctl --endpoints "$URL" "${T[@]}" watch w \
        >"$BATS_TEST_TMPDIR/watch.out" 2>&1 3>&- &
    local wpid=$!
    sleep 1
    ectl "${T[@]}" put w 1
    ectl "${T[@]}" put w 2
    sleep 0.5
    kill "$wpid" 2>/dev/null || true
    wait "$wpid" 2>/dev/null || true
    run cat "$BATS_TEST_TMPDIR/watch.out"
    assert_output "$(printf 'PUT\nw\n1\nPUT\nw\n2')"
    # ALPN: h2 for gRPC clients, http/1.1 for clients offering both
    run bash -c "echo | openssl s_client -connect 127.0.0.1:$PORT -CAfile '$P/ca.crt' -cert '$P/client.crt' -key '$P/client.key' -alpn h2 2>&1"
    assert_output --partial 'ALPN protocol: h2'
    run curl -sS -o /dev/null -w '%{http_version}' "${OK[@]}" "$URL/health"
    assert_output 1.1
    run ectl --cacert "$P/ca.crt" get foo
    assert_failure
    run etcdctl --endpoints "http://127.0.0.1:$PORT" --dial-timeout 2s --command-timeout 3s get foo
    assert_failure
    grep -q "peer did not return a certificate" "$LOG"
    grep -q "failed: handshake: the other side does not speak TLS" "$LOG"
}

@test "flags: https:// needs --cert-file/--key-file; --client-cert-auth needs --trusted-ca-file; TLS flags need https://" {
    run "$SERVER" --listen-client-urls https://127.0.0.1:1 --data-dir "$BATS_TEST_TMPDIR/x"
    assert_failure 2
    assert_output --partial '--listen-client-urls https:// needs --cert-file and --key-file'
    run "$SERVER" --listen-client-urls https://127.0.0.1:1 --cert-file "$P/server.crt" \
        --key-file "$P/server.key" --client-cert-auth --data-dir "$BATS_TEST_TMPDIR/x"
    assert_failure 2
    assert_output --partial '--client-cert-auth needs --trusted-ca-file'
    run "$SERVER" --listen-client-urls http://127.0.0.1:1 --cert-file "$P/server.crt" \
        --key-file "$P/server.key" --data-dir "$BATS_TEST_TMPDIR/x"
    assert_failure 2
    assert_output --partial 'need an https:// --listen-client-urls'
    run "$SERVER" --help
    assert_output --partial '--client-cert-auth'
    # a key that does not match the certificate: a clear startup error
    PORT=$(free_port)
    run "$SERVER" --listen-client-urls "https://127.0.0.1:$PORT" \
        --listen-peer-urls "http://127.0.0.1:$((PORT + 1))" --cert-file "$P/server.crt" \
        --key-file "$P/client.key" --data-dir "$BATS_TEST_TMPDIR/x"
    assert_failure 1
    assert_output --partial 'client TLS:'
}

@test "3 members with client TLS: writes through followers are forwarded to the leader over TLS" {
    "$CLUSTER" start "$DIR" -n 3 -- --heartbeat-interval 50 --election-timeout 500 \
        --cert-file "$P/{name}.crt" --key-file "$P/{name}.key" \
        --trusted-ca-file "$P/ca.crt" --client-cert-auth --log-level debug
    run "$CLUSTER" status "$DIR"
    assert_output --partial leader
    assert_output --partial 'https://127.0.0.1:'
    IFS=, read -r U1 U2 U3 <<<"$("$CLUSTER" urls "$DIR")"
    local u i=0
    for u in "$U1" "$U2" "$U3"; do
        i=$((i + 1))
        run curl -sS "${OK[@]}" -X PUT --data-binary "v$i" "$u/kv/k$i"
        assert_success
        assert_output --partial '"revision"'
        run curl -sS "${OK[@]}" -X POST -d "{\"key\":\"$(printf g$i | base64)\",\"value\":\"eA==\"}" "$u/v3/kv/put"
        assert_success
        assert_output --partial '"header"'
        URL=$u run ectl --cacert "$P/ca.crt" --cert "$P/client.crt" --key "$P/client.key" put e$i x
        assert_output OK
    done
    # every member reads every write; the leader only takes TLS with a
    # client certificate, so the forwarded ones went over TLS
    for u in "$U1" "$U2" "$U3"; do
        for i in 1 2 3; do
            run curl -sS "${OK[@]}" "$u/kv/k$i"
            assert_output "v$i"
        done
    done
    run curl -sS --max-time 2 "http://127.0.0.1:${U1##*:}/kv/k1"
    assert_failure
    # the leader logged TLS handshakes from members: certificate CN n1..n3
    # (only the members hold those certificates; clients use "client")
    run grep -h "client TLS from 127.0.0.1:[0-9]*: TLSv1.3 .*, ALPN 'http/1.1', CN 'n[123]'" \
        "$DIR"/n1.log "$DIR"/n2.log "$DIR"/n3.log
    assert_success
    run grep -h "forward" "$DIR"/n1.log "$DIR"/n2.log "$DIR"/n3.log
    refute_output --partial 'failed'
}
