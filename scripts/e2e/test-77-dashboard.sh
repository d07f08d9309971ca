# shellcheck shell=bash
# The read-only dashboard on the metrics address (issue "Operator experience", item 4): a paced
# download to the laptop migrates to the phone; then headless Chromium, run in the gateway
# namespace, loads http://METRICS/ and its DOM (--dump-dom) shows the proxy was read, the
# migration in its final phase with every phase in order and its sequence-time picture decoded,
# and the flow with the phone as its device; a screenshot is a PNG of the window's size that is
# not blank. On the wire: the page is text/html, a migration request to the metrics address is
# refused (nothing there changes anything), a request for another host name gets 421, and
# GET /v1/media is 404 (that proxy relays no media: the page hides its media section). A second
# case plays an RTSP session through the media relay and finds it in the page's media table.

# e2e_chromium OUT ARGS...: headless Chromium in the gateway namespace with a profile in the
# case's data directory (removed with it); its messages in OUT.log. At most 90 s; timeout
# signals Chromium's whole process group.
e2e_chromium() {
    local out=$1
    shift
    timeout --kill-after=5 90 ip netns exec "$(lab_ns "$LAB_ID" gw)" chromium --headless --no-sandbox --disable-gpu \
        --no-first-run --disable-crash-reporter --disable-extensions --hide-scrollbars \
        --user-data-dir="$CASE_DIR/data/chromium" "$@" >"$out" 2>"$out.log"
}

# e2e_metrics_http METHOD PATH [CURL ARGS...]: "STATUS CONTENT-TYPE" of a request to the
# metrics address, from the gateway namespace.
e2e_metrics_http() {
    local method=$1 path=$2
    shift 2
    ip netns exec "$(lab_ns "$LAB_ID" gw)" curl -sS -m 5 -o /dev/null -X "$method" -w '%{http_code} %{content_type}' \
        "$@" "http://$TL_METRICS$path"
}

e2e_dashboard() {
    e2e_baseline && tl_skip "needs the proxy (dashboard)"
    command -v chromium >/dev/null || tl_skip "chromium is not installed (scripts/test installs it)"
    local data=$CASE_DIR/data
    local stream=$data/stream.bin laptop=$data/laptop.bin phone=$data/phone.bin report=$CASE_DIR/migrate.json
    # ~16 s at 1.5 MB/s: the flow still runs when the page is loaded.
    e2e_random_file "$stream" 24M
    e2e_gateway_up transparent owned 9000
    e2e_paced_server 9000 "$stream" 1500000 --burst 1000000
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" laptop)" socat -u "TCP:$LAB_SRV:9000,connect-timeout=5" \
        CREATE:"$laptop" 2>"$CASE_DIR/socat-laptop.log" &
    local laptop_pid=$!
    e2e_wait_size "$laptop" 1800000 20
    local id
    read -r id _ _ < <(e2e_device_flows "$LAB_LAPTOP" 9000) || true
    [[ -n ${id:-} ]] || tl_fail "no established flow from the laptop in tsmp flows --json"
    e2e_migrate_download_to_phone "$id" "$report" "$phone"
    local phone_pid=$E2E_PHONE_PID
    ((E2E_MIGRATE_STATUS == 0)) || tl_fail "tsmp migrate exited with status $E2E_MIGRATE_STATUS"
    local mid
    mid=$(e2e_report_field "$report" id)
    tl_expect_eq "migration phase" spliced "$(e2e_report_field "$report" phase)"
    timeout 10 ip netns exec "$(lab_ns "$LAB_ID" gw)" "$TSMP" migrations --json >"$CASE_DIR/migrations.json" \
        || tl_fail "tsmp migrations --json failed"

    # The routes on the wire.
    local answer
    answer=$(e2e_metrics_http GET /)
    [[ $answer == "200 text/html; charset=utf-8" ]] || tl_fail "GET / answered '$answer'"
    answer=$(e2e_metrics_http GET "/v1/migrations/svg?id=$mid")
    [[ $answer == "200 image/svg+xml; charset=utf-8" ]] || tl_fail "GET /v1/migrations/svg?id=$mid answered '$answer'"
    answer=$(e2e_metrics_http POST /v1/migrations -H 'Content-Type: application/json' \
        --data "{\"flows\":[$id],\"toAddress\":\"$LAB_LAPTOP\",\"deadlineSeconds\":5}")
    [[ $answer == 404* || $answer == 405* ]] || tl_fail "POST /v1/migrations on the metrics address answered '$answer'"
    answer=$(e2e_metrics_http GET /v1/flows -H 'Host: rebound.example:9464')
    [[ $answer == 421* ]] || tl_fail "GET /v1/flows for another host name answered '$answer'"
    answer=$(e2e_metrics_http GET /v1/media)
    [[ $answer == 404* ]] || tl_fail "GET /v1/media on a proxy without the media relay answered '$answer'"
    tl_note "metrics address: GET / is HTML, the picture SVG; POST /v1/migrations refused, Host rebound.example 421, GET /v1/media 404"

    # The page in a browser: the DOM once its script has read the proxy (virtual time lets the
    # fetches and the picture finish before the DOM is dumped).
    e2e_chromium "$CASE_DIR/dashboard.html" --virtual-time-budget=10000 --dump-dom "http://$TL_METRICS/" \
        || tl_fail "chromium --dump-dom failed (status $?): $(grep -v -e dbus -e 'unexpected operator' "$CASE_DIR/dashboard.html.log" | tail -n 3 | tr '\n' ' ')"
    local said
    said=$(python3 "$E2E_OBSERVE" dashboard "$CASE_DIR/dashboard.html" "$CASE_DIR/migrations.json" "$mid" "$id") \
        || tl_fail "dashboard: $said"
    tl_note "dashboard DOM: $said"
    e2e_chromium "$CASE_DIR/screenshot.out" --virtual-time-budget=10000 --window-size=1280,1000 \
        --screenshot="$CASE_DIR/dashboard.png" "http://$TL_METRICS/" \
        || tl_fail "chromium --screenshot failed: $(grep -v dbus "$CASE_DIR/screenshot.out.log" | tail -n 3 | tr '\n' ' ')"
    said=$(python3 "$E2E_OBSERVE" png "$CASE_DIR/dashboard.png" 1280 1000) || tl_fail "screenshot: $said"
    tl_note "screenshot: $said (kept in the case's logs)"

    local st=0
    wait "$phone_pid" || st=$?
    ((st == 0)) || tl_fail "the phone's socat failed (status $st): $(tail -n 2 "$CASE_DIR/socat-phone.log" | tr '\n' ' ')"
    wait "$laptop_pid" || true
    e2e_expect_concat "$stream" "$laptop" "$phone"
    e2e_proxy_healthy
}

test_case "dashboard: a migration seen in headless Chromium" e2e_dashboard

# The media relay's sessions on the page (GET /v1/media on the metrics address): the laptop
# plays through the relay; the media table lists its session as GET /v1/media does.
e2e_dashboard_media() {
    command -v chromium >/dev/null || tl_skip "chromium is not installed (scripts/test installs it)"
    e2e_media_up 40
    e2e_media_laptop_plays 30
    local answer
    answer=$(e2e_metrics_http GET /v1/media)
    [[ $answer == "200 application/json"* ]] || tl_fail "GET /v1/media on the metrics address answered '$answer'"
    e2e_chromium "$CASE_DIR/dashboard.html" --virtual-time-budget=10000 --dump-dom "http://$TL_METRICS/" \
        || tl_fail "chromium --dump-dom failed (status $?): $(grep -v -e dbus -e 'unexpected operator' "$CASE_DIR/dashboard.html.log" | tail -n 3 | tr '\n' ' ')"
    e2e_media_api >"$CASE_DIR/media.json" || tl_fail "GET /v1/media failed"
    local said
    said=$(python3 "$E2E_OBSERVE" dashboard-media "$CASE_DIR/dashboard.html" "$CASE_DIR/media.json") || tl_fail "dashboard: $said"
    tl_note "dashboard's media table: $said"
    kill "$E2E_MEDIA_LAPTOP_PID" 2>/dev/null || true
    wait "$E2E_MEDIA_LAPTOP_PID" 2>/dev/null || true
    e2e_proxy_healthy
}

test_case "dashboard: a media session seen in headless Chromium" e2e_dashboard_media
