-- wrk script: every request carries the next token of $TOKENS_FILE (one per line), cycling,
-- so that a verified-token cache smaller than the file cannot help.
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do
    tokens[#tokens + 1] = "Bearer " .. line
end
local i = 0

request = function()
    i = i + 1
    if i > #tokens then i = 1 end
    return wrk.format(nil, nil, { ["authorization"] = tokens[i] })
end
