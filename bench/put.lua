-- put.lua - wrk script: POST /v3/kv/put with distinct 16-byte keys and
-- 256-byte values (etcd v3 JSON gateway; base64 bodies).
-- Usage: wrk -t2 -c50 -d10s -s bench/put.lua http://127.0.0.1:2379

local b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

local function base64(data)
    return ((data:gsub('.', function(x)
        local r, b = '', x:byte()
        for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
        return r
    end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
        if #x < 6 then return '' end
        local c = 0
        for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
        return b64chars:sub(c + 1, c + 1)
    end) .. ({ '', '==', '=' })[#data % 3 + 1])
end

local value = base64(string.rep('v', 256))
local thread_id = 0
local counter = 0

function setup(thread)
    thread:set('tid', thread_id)
    thread_id = thread_id + 1
end

function init(args)
    wrk.method = 'POST'
    wrk.headers['Content-Type'] = 'application/json'
end

function request()
    counter = counter + 1
    -- 16 bytes: 't' + thread (1 hex) + 14-digit counter
    local key = string.format('t%x%014d', tid % 16, counter)
    local body = '{"key":"' .. base64(key) .. '","value":"' .. value .. '"}'
    return wrk.format(nil, '/v3/kv/put', nil, body)
end

function response(status, headers, body)
    if status ~= 200 then
        errors_seen = (errors_seen or 0) + 1
    end
end
