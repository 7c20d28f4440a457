#!/bin/sh
# One HTTP/1.1 exchange of the stub ML server; nc runs this per connection with the socket on stdin/stdout.
#   GET /ping      200 text/plain "pong" (503 when unhealthy or within MACHINE_LEARNING_STUB_START_DELAY)
#   any request    no answer at all in mode hang (the port listens, the service is stuck)
#   GET /          200 {"message":"Immich ML"}
#   POST /predict  multipart `entries` + `image` or `text`; the answer is computed by predict.awk
# Every answer carries X-Stub-Version (and X-Stub-Device) and closes the connection.
. /usr/src/mode.sh
cr=$(printf '\r')

respond() {  # status reason content-type body
    printf 'HTTP/1.1 %s %s\r\nContent-Type: %s\r\nContent-Length: %s\r\nX-Stub-Version: %s\r\nX-Stub-Device: %s\r\nConnection: close\r\n\r\n%s' \
        "$1" "$2" "$3" "${#4}" "$IMMICH_SOURCE_REF" "$DEVICE" "$4"
    echo "stub: $method $path -> $1" >&2
    exit 0
}

json() {  # status reason body
    respond "$1" "$2" application/json "$3"
}

IFS=' ' read -r method path _
path=${path%%\?*}
length=0
content_type=
expect=
chunked=
while IFS= read -r line; do
    line=${line%"$cr"}
    [ -z "$line" ] && break
    value=${line#*:}
    value=${value# }
    case $(echo "${line%%:*}" | tr 'A-Z' 'a-z') in
        content-length) length=$value ;;
        content-type) content_type=$value ;;
        expect) expect=$value ;;
        transfer-encoding) chunked=$value ;;
    esac
done

mode=$(stub_mode)
if [ "$mode" = hang ]; then  # accepts the connection, reads the request, never answers
    echo "stub: $method $path -> (hang)" >&2
    sleep 60
    exit 0
fi
case "$method $path" in
    "GET /ping")
        started=$(cat /tmp/stub-started)
        if [ "$mode" = unhealthy ] || [ $(($(date +%s) - started)) -lt "${MACHINE_LEARNING_STUB_START_DELAY:-0}" ]; then
            respond 503 "Service Unavailable" text/plain "unhealthy"
        fi
        respond 200 OK text/plain pong
        ;;
    "GET /")
        json 200 OK '{"message":"Immich ML"}'
        ;;
    "POST /predict") ;;
    *" /ping" | *" /" | *" /predict")
        json 405 "Method Not Allowed" '{"detail":"Method Not Allowed"}'
        ;;
    *)
        json 404 "Not Found" '{"detail":"Not Found"}'
        ;;
esac

if [ -n "$chunked" ]; then
    json 411 "Length Required" '{"detail":"This stub needs a Content-Length"}'
fi
case $expect in
    100-[Cc]ontinue) printf 'HTTP/1.1 100 Continue\r\n\r\n' ;;
esac
body=$(mktemp)
trap 'rm -f "$body"' EXIT
head -c "$length" > "$body"
boundary=${content_type#*boundary=}
boundary=${boundary%%;*}
boundary=${boundary#\"}
boundary=${boundary%\"}
urlencoded=
case $content_type in
    multipart/form-data*) ;;
    application/x-www-form-urlencoded*) boundary= urlencoded=1 ;;
    *) boundary= ;;
esac

# predict.awk prints the status, then the JSON body, then one "<task>/<model>" line per model used.
result=$(awk -v boundary="$boundary" -v urlencoded="$urlencoded" -f /usr/src/predict.awk "$body")
status=$(echo "$result" | sed -n 1p)
answer=$(echo "$result" | sed -n 2p)
models=$(echo "$result" | sed -n '3,$p')

if [ "$status" = 200 ] && [ "$mode" = fail-predict ]; then
    first=$(echo "$models" | head -n 1)
    json 500 "Internal Server Error" "{\"detail\":\"Failed to load model '${first#*/}'\"}"
fi
if [ "${MACHINE_LEARNING_STUB_PREDICT_WORKERS:-0}" = 1 ]; then
    # One request at a time, like a server with one inference worker (a GPU busy with one batch): the
    # others wait for the lock (mkdir is atomic), so the delay is a real service time and throughput is
    # 1/delay per host.
    until mkdir /tmp/stub-predict.lock 2>/dev/null; do usleep 10000; done
    sleep "${MACHINE_LEARNING_STUB_PREDICT_DELAY:-0}"
    rmdir /tmp/stub-predict.lock
else
    sleep "${MACHINE_LEARNING_STUB_PREDICT_DELAY:-0}"
fi
# Simulate the model download the real service does on first use of a model.
for model in $models; do
    dir="${MACHINE_LEARNING_CACHE_FOLDER:-/cache}/$model"
    if [ ! -e "$dir/model.onnx" ]; then
        mkdir -p "$dir" && echo "stub model $model" > "$dir/model.onnx"
        echo "stub: downloaded $model into the model cache" >&2
    fi
done
case $status in
    200) json 200 OK "$answer" ;;
    400) json 400 "Bad Request" "$answer" ;;
    *) json 422 "Unprocessable Entity" "$answer" ;;
esac
