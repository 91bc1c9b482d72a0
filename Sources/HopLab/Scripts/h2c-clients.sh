# h2c-clients.sh CURL NGHTTP BASEURL PAIRS same|unique BODYFILE
# h2c clients with prior knowledge, beside the lab's HTTP/1.1 load: PAIRS times, curl
# --http2-prior-knowledge HEAD then GET (each a new connection, one stream), then nghttp with
# three GETs sent together on one connection and, every other time, nghttp POSTing BODYFILE.
# One line per curl request: METHOD TARGET LOCAL STATUS (nghttp does not say its port: the
# sidecar's log is the truth for its streams); a failed nghttp says so on stderr.
curl="$1"; nghttp="$2"; base="$3"; pairs="$4"; mode="$5"; body="$6"
i=0
while [ "$i" -lt "$pairs" ]; do
  i=$((i + 1))
  if [ "$mode" = same ]; then
    t1="/"; t2="/"; t3="/"; t4="/"; t5="/big"; t6="/"
  else
    t1="/?h2c=h$i"; t2="/?h2c=g$i"; t3="/?nghttp=a$i"; t4="/?nghttp=b$i"; t5="/big?nghttp=c$i"; t6="/?nghttp=p$i"
  fi
  r=$("$curl" -s -o /dev/null --max-time 5 --http2-prior-knowledge -I -w '%{local_ip}:%{local_port} %{http_code}' "$base$t1") && echo "HEAD $t1 $r"
  r=$("$curl" -s -o /dev/null --max-time 5 --http2-prior-knowledge -w '%{local_ip}:%{local_port} %{http_code}' "$base$t2") && echo "GET $t2 $r"
  "$nghttp" -n -t 5 "$base$t3" "$base$t4" "$base$t5" || echo "nghttp GET failed (exit $?)" >&2
  if [ $((i % 2)) -eq 1 ]; then
    "$nghttp" -n -t 5 -d "$body" "$base$t6" || echo "nghttp POST failed (exit $?)" >&2
  fi
  sleep 0.05
done
