-- wrk script for bench/soak.sh: a public API's mix of callers, and every answer counted by
-- status. Requests cycle through: a fresh token of $TOKENS_FILE (one per line), no token,
-- an explicit x-version-override, a forged token (which must get 401), and the slow route
-- (answered after 300 ms).
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do
    tokens[#tokens + 1] = "Bearer " .. line
end
local forged = "Bearer " .. os.getenv("BAD_TOKEN")
local i = 0
local threads = {}

function setup(thread)
    thread:set("id", #threads + 1)
    threads[#threads + 1] = thread
end

function init(args)
    statuses = {}
end

request = function()
    i = i + 1
    local kind = i % 5
    if kind == 4 then
        return wrk.format(nil, "/slow", { ["x-echo-delay-ms"] = os.getenv("SLOW_MS") or "300" })
    elseif kind == 0 then
        return wrk.format(nil, nil, { ["authorization"] = tokens[math.floor(i / 4) % #tokens + 1] })
    elseif kind == 1 then
        return wrk.format(nil, nil, {})
    elseif kind == 2 then
        return wrk.format(nil, nil, { ["x-version-override"] = "v2" })
    else
        return wrk.format(nil, nil, { ["authorization"] = forged })
    end
end

response = function(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
    local total = {}
    for _, thread in ipairs(threads) do
        local s = thread:get("statuses")
        for status, n in pairs(s) do
            total[status] = (total[status] or 0) + n
        end
    end
    for status, n in pairs(total) do
        io.write(string.format("status %d %d\n", status, n))
    end
    local e = summary.errors
    io.write(string.format("socket connect %d read %d write %d timeout %d\n",
        e.connect, e.read, e.write, e.timeout))
end
