curl="$1"; base="$2"; pairs="$3"; mode="$4"
i=0
while [ "$i" -lt "$pairs" ]; do
  i=$((i + 1))
  if [ "$mode" = same ]; then t1="/"; t2="/"; else t1="/?curl=h$i"; t2="/?curl=g$i"; fi
  r=$("$curl" -s -o /dev/null --max-time 5 -I -w '%{local_ip}:%{local_port} %{http_code}' "$base$t1") && echo "HEAD $t1 $r"
  r=$("$curl" -s -o /dev/null --max-time 5 -w '%{local_ip}:%{local_port} %{http_code}' "$base$t2") && echo "GET $t2 $r"
  sleep 0.1
done