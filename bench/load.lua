-- wrk script of bench/run.py. POSTs a JSON body (BODY) to the path given on the command line;
-- with SPREAD=n, to /v2/functions/<PREFIX><0..n-1>/run/<FUNCTION>, one picked at random per call.
-- AUTHORIZATION, when set, is sent as that header.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BODY") or '{"parameters": {"name": "world"}}'
if os.getenv("AUTHORIZATION") then
  wrk.headers["Authorization"] = os.getenv("AUTHORIZATION")
end

local spread = tonumber(os.getenv("SPREAD") or "")
if spread then
  local prefix, fn = os.getenv("PREFIX"), os.getenv("FUNCTION")
  math.randomseed(os.time())
  request = function()
    return wrk.format(nil, "/v2/functions/" .. prefix .. math.random(0, spread - 1) .. "/run/" .. fn)
  end
end

