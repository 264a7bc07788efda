-- wrk script for bench/webhook.py: POSTs pre-built, pre-signed webhook bodies in order.
--
--   wrk -t2 -c16 -d15s --latency -s bench/wrk_bodies.lua http://127.0.0.1:PORT -- FILE THREADS
--
-- FILE holds one delivery per line: the X-Hub-Signature-256 value, a tab, the JSON body.
-- Thread k of THREADS sends lines k, k + THREADS, k + 2 THREADS, ... and starts over at its
-- end. Each thread counts the requests it built and the answers by status; done() prints
-- them with wrk's latency percentiles as one line starting "WRKJSON " for the script to read.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   local file, nthreads = args[1], tonumber(args[2])
   reqs = {}
   local i = 0
   for line in io.lines(file) do
      if i % nthreads == id then
         local tab = line:find("\t", 1, true)
         local sig, body = line:sub(1, tab - 1), line:sub(tab + 1)
         reqs[#reqs + 1] = wrk.format("POST", "/webhook", {
            ["Content-Type"] = "application/json",
            ["X-Hub-Signature-256"] = sig,
         }, body)
      end
      i = i + 1
   end
   n = #reqs
   idx = 0
   sent = 0
   ok = 0
   bad = 0
end

function request()
   idx = idx % n + 1
   sent = sent + 1
   return reqs[idx]
end

function response(status, headers, body)
   if status == 200 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
   local per = {}
   for _, t in ipairs(threads) do
      per[#per + 1] = string.format('{"id":%d,"sent":%d,"ok":%d,"bad":%d,"bodies":%d}',
         t:get("id"), t:get("sent"), t:get("ok"), t:get("bad"), t:get("n"))
   end
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f},' ..
      '"threads":[%s]}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean, table.concat(per, ",")))
end
