-- put.lua - wrk script: POST /v3/kv/put with distinct 16-byte keys and
-- 256-byte values (etcd v3 JSON gateway; base64 bodies).
-- Usage: wrk -t2 -c50 -d10s -s bench/put.lua http://127.0.0.1:2379
--
-- The key is built directly in base64 so no encoding runs per request: 22
-- characters from the base64 alphabet (a thread letter, 20 digits of a
-- per-thread counter, then 'A' whose low bits are zero) plus "==" decode to
-- exactly 16 bytes, distinct for every (thread, counter).

local value = string.rep('dmFs', 86) -- 344 base64 chars = 258 bytes
value = value:sub(1, 340) .. 'dg==' -- 256 bytes exactly
local letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef'
local thread_id = 0

function setup(thread)
    thread:set('tid', thread_id)
    thread_id = thread_id + 1
end

function init(args)
    wrk.method = 'POST'
    wrk.headers['Content-Type'] = 'application/json'
    prefix = '{"key":"' .. letters:sub(tid % 32 + 1, tid % 32 + 1)
    suffix = 'A==","value":"' .. value .. '"}'
    counter = 0
end

function request()
    counter = counter + 1
    return wrk.format(nil, '/v3/kv/put', nil,
        prefix .. string.format('%020d', counter) .. suffix)
end
