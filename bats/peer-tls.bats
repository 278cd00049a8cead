#!/usr/bin/env bats
# peer-tls.bats - mutual TLS between members: a throw-away CA made with
# openssl, a 3-member cluster over TLS, and what must be refused (another
# CA's certificate, a plain member, an expired certificate, a CN outside
# the allow-list) without disturbing the cluster. Uses tools/cluster.

load lib

CLUSTER=$BATS_TEST_DIRNAME/../tools/cluster
TIMING=(--heartbeat-interval 50 --election-timeout 500)

setup() {
    DIR=$BATS_TEST_TMPDIR/c
    P=$BATS_TEST_TMPDIR/pki
    mkdir -p "$P"
    export MS_BUILD
    mk_ca ca
    mk_ca ca2
    for n in n1 n2 n3; do mk_cert ca "$n" "$n"; done
    TLS=(--peer-cert-file "$P/{name}.crt" --peer-key-file "$P/{name}.key"
         --peer-trusted-ca-file "$P/ca.crt" --peer-client-cert-auth)
}

teardown() {
    "$CLUSTER" stop "$DIR" >/dev/null 2>&1 || true
    if [ -f "$DIR/n4.pid" ]; then stop_server "$(cat "$DIR/n4.pid")" || true; fi
}

# mk_ca NAME: a self-signed CA, $P/NAME.crt and .key
mk_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$P/$1.key" -out "$P/$1.crt" -days 2 -subj "/CN=$1 test CA" 2>/dev/null
}

# mk_cert CA NAME CN [DAYS]: a member certificate $P/NAME.crt (+ .key)
# from CA, SAN IP 127.0.0.1, serverAuth+clientAuth; DAYS -1: expired.
mk_cert() {
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' >"$P/ext.cnf"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$P/$2.key" -out "$P/$2.csr" -subj "/CN=$3" 2>/dev/null
    openssl x509 -req -in "$P/$2.csr" -CA "$P/$1.crt" -CAkey "$P/$1.key" \
        -CAcreateserial -out "$P/$2.crt" -days "${4:-2}" -extfile "$P/ext.cnf" 2>/dev/null
}

start_tls_cluster() {
    "$CLUSTER" start "$DIR" -n 3 -- "${TIMING[@]}" "${TLS[@]}" "$@"
    IFS=, read -r U1 U2 U3 <<<"$("$CLUSTER" urls "$DIR")"
    # shellcheck disable=SC1091
    . "$DIR/cluster.env"
}

status_of() { curl -s --max-time 1 -X POST "$1/v3/maintenance/status"; }

leader_url() {
    local id
    id=$(status_of "$U1" | json_get '["leader"]')
    curl -s --max-time 1 -X POST "$U1/v3/cluster/member/list" |
        python3 -c "import json,sys; d=json.load(sys.stdin); print([m['clientURLs'][0] for m in d['members'] if m['ID']=='$id'][0])"
}

# start_n4 CERT KEY CA [FLAGS...]: a fourth server that claims to be a
# member (n4 in its own --initial-cluster with the three real members);
# sets R4 (its client URL) and L4 (its log). N4_PORT: its client port
# (peer port + 1; default a free one).
start_n4() {
    local port cert=$1 key=$2 ca=$3
    shift 3
    port=${N4_PORT:-$(free_port)}
    R4=http://127.0.0.1:$port
    L4=$BATS_TEST_TMPDIR/n4.log
    "$SERVER" --name n4 --data-dir "$BATS_TEST_TMPDIR/n4" \
        --listen-client-urls "$R4" --listen-peer-urls "https://127.0.0.1:$((port + 1))" \
        --initial-cluster "$INITIAL,n4=https://127.0.0.1:$((port + 1))" \
        --peer-cert-file "$cert" --peer-key-file "$key" --peer-trusted-ca-file "$ca" \
        --peer-client-cert-auth --heartbeat-interval 20 --election-timeout 200 "$@" \
        >"$L4" 2>&1 &
    echo $! >"$DIR/n4.pid"
}

# writes_while_running SECONDS: puts through the leader for that long;
# every put must succeed and the leader and its term must not change.
writes_while_running() {
    local leader term0 st i=0 end=$((SECONDS + $1))
    leader=$(leader_url)
    term0=$(status_of "$leader" | json_get '["raftTerm"]')
    while [ $SECONDS -lt $end ]; do
        curl -s -f --max-time 2 -X PUT --data-binary "v$i" "$leader/kv/w$i" >/dev/null ||
            { echo "put $i through $leader failed" >&2; return 1; }
        i=$((i + 1))
        sleep 0.05
    done
    st=$(status_of "$leader")
    [ "$(echo "$st" | json_get '["raftTerm"]')" = "$term0" ] || { echo "term changed: $st (was $term0)" >&2; return 1; }
    [ "$(echo "$st" | json_get '["leader"]')" = "$(echo "$st" | json_get '["header"]["member_id"]')" ] ||
        { echo "leader changed: $st" >&2; return 1; }
    [ "$i" -ge 10 ]
    WRITES=$i
}

@test "3 members over mutual TLS elect and replicate; the peer port speaks TLS and refuses clients without a member certificate" {
    start_tls_cluster
    for u in "$U1" "$U2" "$U3"; do
        curl -s -f -X PUT --data-binary "via-$u" "$u/kv/k-${u##*:}" >/dev/null
    done
    for u in "$U1" "$U2" "$U3"; do
        for w in "$U1" "$U2" "$U3"; do
            run curl -s "$u/kv/k-${w##*:}?consistency=linearizable"
            assert_output "via-$w"
        done
    done
    run grep -h "peers on https://" "$DIR"/n1.log
    assert_success
    # the peer listener answers a TLS 1.3 handshake with n1's certificate
    # (verified against the CA, SAN 127.0.0.1) and asks for ours
    run sh -c "openssl s_client -connect 127.0.0.1:$((BASE + 1)) -CAfile '$P/ca.crt' \
        -verify_ip 127.0.0.1 -cert '$P/n2.crt' -key '$P/n2.key' </dev/null 2>&1"
    assert_output --partial "Verify return code: 0 (ok)"
    assert_output --partial "TLSv1.3"
    assert_output --partial "CN = n1"
    assert_output --partial "Acceptable client certificate CA names"
    # without a client certificate the member refuses, and says so
    run sh -c "sleep 1 | openssl s_client -connect 127.0.0.1:$((BASE + 1)) -CAfile '$P/ca.crt' 2>&1"
    assert_output --partial "alert certificate required"
    run grep -h "refused connection from 127.0.0.1" "$DIR"/n1.log
    assert_output --partial "peer did not return a certificate"
    # a member certificate is not enough: inside TLS the identity message
    # must follow (here an HTTP request instead)
    run sh -c "(printf 'GET / HTTP/1.0\r\n\r\n'; sleep 1) | openssl s_client -quiet \
        -connect 127.0.0.1:$((BASE + 1)) -CAfile '$P/ca.crt' -cert '$P/n2.crt' -key '$P/n2.key' 2>&1"
    run grep -h "refused connection from 127.0.0.1: not a metastore peer preamble" "$DIR"/n1.log
    assert_success
}

@test "a member with another CA's certificate can neither join nor disturb the cluster; members log why they refused it" {
    start_tls_cluster
    # the rogue trusts our CA (its certificate is public) and presents a
    # certificate from its own CA with a member's CN
    mk_cert ca2 rogue n1
    start_n4 "$P/rogue.crt" "$P/rogue.key" "$P/ca.crt"
    writes_while_running 4
    # it reached every member and was refused by each
    for n in n1 n2 n3; do
        run grep -h "refused connection from 127.0.0.1: certificate verify failed: unable to get local issuer certificate (CN 'n1')" "$DIR/$n.log"
        assert_success
    done
    # and it learnt that it was refused, from the members' alerts
    run grep -h "refused by the other side: tlsv1 alert unknown ca" "$L4"
    assert_success
    # it holds none of the cluster's data
    run curl -s --max-time 2 "$R4/kv/w1?consistency=serializable"
    refute_output "v1"
    # nothing of it entered the member list
    run curl -s -X POST "$U1/v3/cluster/member/list"
    refute_output --partial "n4"
    # the cluster still replicates everything written meanwhile
    run curl -s "$U3/kv/w$((WRITES - 1))?consistency=linearizable"
    assert_output "v$((WRITES - 1))"

    # even added by an operator (tricked into member add), it never gets
    # the log: the leader refuses its certificate as a server too
    stop_server "$(cat "$DIR/n4.pid")" || true
    N4_PORT=$(free_port)
    run curl -s "$U1/v3/cluster/member/add" -d "{\"peerURLs\":[\"https://127.0.0.1:$((N4_PORT + 1))\"],\"isLearner\":true}"
    assert_output --partial '"isLearner":true'
    rm -rf "$BATS_TEST_TMPDIR/n4"
    start_n4 "$P/rogue.crt" "$P/rogue.key" "$P/ca.crt" --initial-cluster-state existing
    writes_while_running 3
    run curl -s --max-time 2 "$R4/kv/w1?consistency=serializable"
    refute_output "v1"
    run grep -h "connection to node [0-9]* at 127.0.0.1:$((N4_PORT + 1)) refused: certificate verify failed" "$DIR"/n1.log "$DIR"/n2.log "$DIR"/n3.log
    assert_success
}

@test "a plain (non-TLS) member is refused by TLS members, which say it does not speak TLS" {
    start_tls_cluster
    port=$(free_port)
    plain_initial=${INITIAL//https:/http:}
    "$SERVER" --name n4 --data-dir "$BATS_TEST_TMPDIR/n4" \
        --listen-client-urls "http://127.0.0.1:$port" --listen-peer-urls "http://127.0.0.1:$((port + 1))" \
        --initial-cluster "$plain_initial,n4=http://127.0.0.1:$((port + 1))" \
        --heartbeat-interval 20 --election-timeout 200 >"$BATS_TEST_TMPDIR/n4.log" 2>&1 &
    echo $! >"$DIR/n4.pid"
    writes_while_running 3
    run grep -h "refused connection from 127.0.0.1: handshake: the other side does not speak TLS (wrong version number)" "$DIR"/n1.log "$DIR"/n2.log "$DIR"/n3.log
    assert_success
    # C-Raft's stock handshake written by hand gets the same answer
    printf '\001\000\000\000\000\000\000\000\002\000\000\000\000\000\000\000' >"$BATS_TEST_TMPDIR/stock"
    run timeout 6 bash -c "exec 3<>/dev/tcp/127.0.0.1/$((BASE + 1)); \
        cat '$BATS_TEST_TMPDIR/stock' >&3; cat <&3"
    # the member closes it at once (C-Raft's stock transport would wait
    # for the rest of its preamble: timeout's 124)
    assert_success
    assert_output ""
    # a connection that sends nothing is closed by the 5 s deadline
    start=$SECONDS
    run timeout 9 bash -c "exec 3<>/dev/tcp/127.0.0.1/$((BASE + 2 * 1 + 1)); cat <&3"
    assert_success
    [ $((SECONDS - start)) -ge 4 ]
    run grep -h "no TLS handshake and preamble within 5 s" "$DIR/n2.log"
    assert_success
}

@test "an expired member certificate is refused with a clear error on both sides" {
    start_tls_cluster
    mk_cert ca old n4 -1
    start_n4 "$P/old.crt" "$P/old.key" "$P/ca.crt"
    writes_while_running 3
    run grep -h "refused connection from 127.0.0.1: certificate verify failed: certificate has expired (CN 'n4')" "$DIR/n1.log"
    assert_success
    run grep -h "refused by the other side: sslv3 alert certificate expired" "$L4"
    assert_success
}

@test "--peer-cert-allowed-cn refuses a certificate of the right CA with another CN" {
    start_tls_cluster --peer-cert-allowed-cn n1,n2,n3
    mk_cert ca other n9
    start_n4 "$P/other.crt" "$P/other.key" "$P/ca.crt"
    writes_while_running 3
    run grep -h "refused connection from 127.0.0.1: certificate CN 'n9' is not in the allowed list" "$DIR/n2.log"
    assert_success
}

@test "peer TLS flags: missing companions and mismatched URL schemes are usage errors; unreadable files are named" {
    run timeout 20 "$SERVER" --peer-cert-file "$P/n1.crt"
    assert_equal "$status" 2
    assert_output --partial "peer TLS needs --peer-key-file"
    run timeout 20 "$SERVER" --peer-cert-file "$P/n1.crt" --peer-key-file "$P/n1.key"
    assert_equal "$status" 2
    assert_output --partial "peer TLS needs --peer-trusted-ca-file"
    run timeout 20 "$SERVER" --peer-client-cert-auth
    assert_equal "$status" 2
    run timeout 20 "$SERVER" --peer-cert-file "$P/n1.crt" --peer-key-file "$P/n1.key" \
        --peer-trusted-ca-file "$P/ca.crt" --listen-peer-urls http://127.0.0.1:2380
    assert_equal "$status" 2
    assert_output --partial "use https://"
    run timeout 20 "$SERVER" --listen-peer-urls https://127.0.0.1:2380
    assert_equal "$status" 2
    assert_output --partial "https:// needs --peer-cert-file"
    port=$(free_port)
    run timeout 20 "$SERVER" --data-dir "$BATS_TEST_TMPDIR/x" --listen-client-urls "http://127.0.0.1:$port" \
        --listen-peer-urls "https://127.0.0.1:$((port + 1))" --peer-cert-file "$P/n1.crt" \
        --peer-key-file "$P/missing.key" --peer-trusted-ca-file "$P/ca.crt"
    assert_equal "$status" 1
    assert_output --partial "key file $P/missing.key: No such file or directory"
    run timeout 20 "$SERVER" --data-dir "$BATS_TEST_TMPDIR/x" --listen-client-urls "http://127.0.0.1:$port" \
        --listen-peer-urls "https://127.0.0.1:$((port + 1))" --peer-cert-file "$P/n1.crt" \
        --peer-key-file "$P/n2.key" --peer-trusted-ca-file "$P/ca.crt"
    assert_equal "$status" 1
    assert_output --partial "does not match certificate file $P/n1.crt"
    # a peer port in use: the transport's own message (libraft has none)
    python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',$((port + 1)))); s.listen(1); time.sleep(10)" &
    holder=$!
    sleep 0.5
    run timeout 20 "$SERVER" --data-dir "$BATS_TEST_TMPDIR/y" --listen-client-urls "http://127.0.0.1:$port" \
        --listen-peer-urls "https://127.0.0.1:$((port + 1))" --peer-cert-file "$P/n1.crt" \
        --peer-key-file "$P/n1.key" --peer-trusted-ca-file "$P/ca.crt"
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
    assert_equal "$status" 1
    assert_output --partial "listen on 127.0.0.1:$((port + 1)): address already in use"
}

@test "over peer TLS: a follower down past the trailing log catches up by a multi-MiB snapshot; member add with an https peer URL joins with its certificate" {
    # one entry per put, so 6000 puts leave the follower well behind the
    # 2048 entries kept after a snapshot: it must install one (~12 MB,
    # more than the pump's high-water mark)
    start_tls_cluster --snapshot-count 500 --snapshot-log-percent 0 --batch-mode off
    leader=$(leader_url)
    follower=n1; [ "$leader" = "$U1" ] && follower=n2
    "$CLUSTER" kill "$DIR" "$follower"
    run "$MS_BUILD/metastore-bench" load --endpoints "$leader" --total 6000 --clients 16 \
        --op put --val-size 2048 --key-space 1000
    assert_success
    assert_line 'errors 0'
    curl -s -f -X PUT --data-binary last "$leader/kv/last" >/dev/null
    "$CLUSTER" restart "$DIR" "$follower"
    fu=$U1; [ "$follower" = n2 ] && fu=$U2
    for i in $(seq 1 150); do
        [ "$(curl -s "$fu/kv/last?consistency=serializable")" = last ] && break
        sleep 0.1
    done
    run curl -s "$fu/kv/last?consistency=serializable"
    assert_output last
    run grep -h "restored a snapshot of" "$DIR/$follower.log"
    assert_success
    run curl -s "$fu/v3/kv/range" -d "{\"key\":\"$(b64 load/)\",\"range_end\":\"$(b64 load0)\",\"count_only\":true,\"serializable\":true}"
    assert_output --partial '"count":"1000"'

    # a new member over https
    mk_cert ca n4 n4
    c4=$((BASE + 6)); p4=$((BASE + 7))
    run curl -s "$U3/v3/cluster/member/add" -d "{\"peerURLs\":[\"https://127.0.0.1:$p4\"],\"isLearner\":true}"
    assert_output --partial "\"peerURLs\":[\"https://127.0.0.1:$p4\"]"
    "$SERVER" --name n4 --data-dir "$DIR/n4" --listen-client-urls "http://127.0.0.1:$c4" \
        --listen-peer-urls "https://127.0.0.1:$p4" --initial-cluster "$INITIAL,n4=https://127.0.0.1:$p4" \
        --initial-cluster-state existing "${TIMING[@]}" --peer-cert-file "$P/n4.crt" \
        --peer-key-file "$P/n4.key" --peer-trusted-ca-file "$P/ca.crt" --peer-client-cert-auth \
        >"$DIR/n4.log" 2>&1 &
    echo $! >"$DIR/n4.pid"
    wait_healthy "http://127.0.0.1:$c4"
    for i in $(seq 1 100); do
        [ "$(curl -s "http://127.0.0.1:$c4/kv/last?consistency=serializable")" = last ] && break
        sleep 0.1
    done
    run curl -s "http://127.0.0.1:$c4/kv/last?consistency=serializable"
    assert_output last
    run curl -s -X POST "$U1/v3/cluster/member/list"
    assert_output --partial "https://127.0.0.1:$p4"
}
