# grpc_raw.py - raw gRPC and HTTP/2 probes for grpc.bats (python3-grpc, as
# python3-etcd3 installs it). Usage: grpc_raw.py CHECK PORT; prints
# "CODE details" lines for the harness to compare.
import socket, sys, time
import grpc

check, port = sys.argv[1], int(sys.argv[2])
target = '127.0.0.1:%d' % port


def call(path, body, timeout=5):
    ch = grpc.insecure_channel(target)
    try:
        f = ch.unary_unary(path)
        f(body, timeout=timeout)
        print('OK')
    except grpc.RpcError as e:
        print(e.code().name, e.details())
    ch.close()


def pb_put(key, value):
    def ld(tag, b):  # length-delimited field
        n, out = len(b), b''
        while True:
            byte = n & 0x7f
            n >>= 7
            out += bytes([byte | (0x80 if n else 0)])
            if not n:
                break
        return bytes([tag]) + out + b
    return ld(0x0a, key) + ld(0x12, value)


if check == 'unknown':
    call('/etcdserverpb.KV/Nope', b'')
    call('/foo.Bar/Baz', b'')
    call('/etcdserverpb.Cluster/MemberUpdate', b'')
elif check == 'badpb':
    call('/etcdserverpb.KV/Put', b'\xff\xff\xff')
    call('/etcdserverpb.KV/Put', b'')  # no key
elif check == 'sizes':
    call('/etcdserverpb.KV/Put', pb_put(b'big', b'x' * (1 << 20)))
    call('/etcdserverpb.KV/Put', pb_put(b'big', b'x' * (1600 * 1024)))
    call('/etcdserverpb.KV/Put', pb_put(b'big', b'x' * (3 << 20)))
elif check == 'watchstop':
    ch = grpc.insecure_channel(target)
    f = ch.stream_stream('/etcdserverpb.Watch/Watch')
    def reqs():
        yield b'\x0a\x03\x0a\x01a'  # create_request {key: "a"}
        time.sleep(60)
    it = f(reqs())
    try:
        next(it)
        print('created', flush=True)
        for _ in it:
            pass
        print('OK')
    except grpc.RpcError as e:
        print(e.code().name, e.details(), flush=True)
elif check == 'noleader':
    # a Watch stream that asks for a leader, as clientv3 marks it
    ch = grpc.insecure_channel(target)
    f = ch.stream_stream('/etcdserverpb.Watch/Watch')
    it = f(iter([b'\x0a\x03\x0a\x01a']), metadata=[('hasleader', 'true')],
           timeout=5)
    try:
        next(it)
        print('created')
    except grpc.RpcError as e:
        print(e.code().name, e.details())
elif check == 'slowwatch':
    # a watcher that stops reading while 12 MB of events come: the server
    # ends its stream instead of queueing without bound
    import etcd3
    ch = grpc.insecure_channel(target)
    f = ch.stream_stream('/etcdserverpb.Watch/Watch')
    def reqs():
        yield b'\x0a\x06\x0a\x04slow'  # create_request {key: "slow"}
        time.sleep(120)
    it = f(reqs())
    next(it)
    c = etcd3.client(host='127.0.0.1', port=port)
    for i in range(120):
        c.put('slow', 'x' * 100000)
    time.sleep(1)
    try:
        for _ in it:
            pass
        print('OK')
    except grpc.RpcError as e:
        print(e.code().name, e.details())
elif check == 'garbage':
    # the preface, then frames that are not HTTP/2: the server must close
    # this connection and keep serving others
    for junk in (b'\x00\x00\x04\x09\x00\x00\x00\x00\x01abcd',
                 b'\xff' * 64,
                 b'\x00\x00\x05\x00\x01\x00\x00\x00\x07\x00\x00\x00\x00'):
        s = socket.create_connection(('127.0.0.1', port))
        s.sendall(b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + junk)
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        s.close()
    print('closed')
