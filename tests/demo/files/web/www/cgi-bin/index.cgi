#!/bin/sh
# The demo's home page (busybox httpd runs /cgi-bin/index.cgi for "/"):
# counts the visit in the cache service, found by its service name through
# rstack's embedded DNS.
if hits=$(redis-cli -h cache INCR hits 2>&1) && [ -n "$hits" ]; then
  last=$(redis-cli -h cache GET worker:last)
  status="200 OK"
  body="Hello from rstack! This page has been served $hits times (by container $(hostname)).
The worker last checked in at ${last:-never} UTC."
else
  status="503 Service Unavailable"
  body="Hello from rstack! The cache is unreachable: $hits"
fi
printf 'Status: %s\r\nContent-Type: text/plain\r\n\r\n%s\n' "$status" "$body"
