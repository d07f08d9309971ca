/// The dashboard's one page (`GET /` on the metrics address, `Dashboard`): self-contained, with
/// inline CSS and script and a Content-Security-Policy that lets it load nothing but its own
/// server's JSON and pictures. Every 2 s it reads `/v1/flows` and `/v1/migrations` and shows:
/// throughput (from the listed flows' byte counters, kernel path included, with a minute's
/// sparkline), the kernel path's share, drops by reason, the migrations with their phases and,
/// for the latest ones, their sequence-time pictures (`/v1/migrations/svg`), and the flows; with
/// the media relay (`/v1/media`; the section stays hidden when the proxy relays none), the media
/// sessions with their players' reception and migration phase.
/// Data only ever reaches the page as text (`textContent`), never as markup; rows carry
/// `data-flow` / `data-migration` / `data-phase` / `data-media`, and a picture `data-loaded` (its
/// size once decoded), so a headless browser's DOM can be checked by content.
enum DashboardPage {
    static let html = #"""
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self'; connect-src 'self'">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>tsmp proxy</title>
        <style>
        body { font: 14px/1.4 system-ui, sans-serif; margin: 0 1.5em 2em; color: #222; background: #fafafa; }
        header { display: flex; align-items: baseline; gap: 1em; }
        h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin: 1.2em 0 .4em; }
        #updated { color: #666; } body[data-state=error] #updated { color: #b00; }
        .cards { display: flex; flex-wrap: wrap; gap: 1em; }
        .card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .6em 1em; min-width: 14em; }
        .card h2 { margin: 0 0 .3em; font-size: .95em; color: #555; }
        .big { font-size: 1.5em; font-weight: 600; }
        table { border-collapse: collapse; background: #fff; }
        th, td { border-bottom: 1px solid #e4e4e4; padding: .2em .6em; text-align: left; white-space: nowrap; }
        td.n { text-align: right; font-variant-numeric: tabular-nums; } td.phases { white-space: normal; min-width: 18em; }
        tr[data-phase=spliced] td.phase { color: #070; } tr[data-phase=rolled-back] td.phase, tr[data-phase=aborted] td.phase { color: #b00; }
        .empty { color: #888; font-style: italic; }
        figure { display: inline-block; margin: .5em 1em .5em 0; background: #fff; border: 1px solid #ddd; }
        figure img { width: 600px; height: auto; display: block; } figcaption { padding: .2em .5em; color: #555; }
        #spark polyline { fill: none; stroke: #1f77b4; stroke-width: 1.5; }
        </style></head>
        <body data-state="loading">
        <header><h1>tsmp proxy</h1><span id="updated">loading…</span></header>
        <div class="cards">
          <div class="card"><h2>Throughput (listed flows)</h2><div class="big" id="throughput">–</div>
            <svg id="spark" width="240" height="40" viewBox="0 0 240 40"><polyline points=""/></svg></div>
          <div class="card"><h2>Flows</h2><div class="big" id="flow-count">–</div><div id="nat-ports"></div></div>
          <div class="card"><h2>Kernel path</h2><div class="big" id="kernel-share">–</div><div id="kernel-bytes"></div></div>
          <div class="card"><h2>Drops by reason</h2><table id="drops"><tbody></tbody></table></div>
        </div>
        <h2>Migrations</h2>
        <table id="migrations"><thead><tr><th>ID</th><th>flow</th><th>from → to</th><th>phase</th><th>phases (s after the request)</th>
          <th>cut: to device</th><th>to server</th><th>from cache</th><th>reason</th></tr></thead><tbody></tbody></table>
        <div id="pictures"></div>
        <section id="media-section" hidden>
        <h2>Media sessions</h2>
        <table id="media"><thead><tr><th>ID</th><th>player</th><th>URL</th><th>codec</th><th>state</th><th>packets</th>
          <th>loss</th><th>jitter (ticks)</th><th>migration</th></tr></thead><tbody></tbody></table>
        </section>
        <h2>Flows</h2>
        <table id="flows"><thead><tr><th>ID</th><th>device</th><th>server</th><th>NAT</th><th>state</th><th>to server</th>
          <th>to device</th><th>rate</th><th>idle</th><th>path</th><th>migration</th></tr></thead><tbody></tbody></table>
        <script>
        "use strict";
        const $ = (id) => document.getElementById(id);
        const pictures = new Map();
        const rates = [];
        let previous = null;

        function size(n) {
          const units = ["B", "KB", "MB", "GB", "TB"];
          let i = 0;
          while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
          return (i ? n.toFixed(1) : String(n)) + " " + units[i];
        }
        function bits(bytesPerSecond) {
          const b = bytesPerSecond * 8, units = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s"];
          let v = b, i = 0;
          while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
          return v.toFixed(i ? 1 : 0) + " " + units[i];
        }
        function row(values, data) {
          const tr = document.createElement("tr");
          for (const [text, cls] of values) {
            const td = document.createElement("td");
            td.textContent = text;
            if (cls) td.className = cls;
            tr.appendChild(td);
          }
          for (const k in data || {}) tr.dataset[k] = data[k];
          return tr;
        }
        function empty(columns, text) {
          const tr = row([[text, "empty"]]);
          tr.firstChild.colSpan = columns;
          return tr;
        }
        async function get(path) {
          const r = await fetch(path, { cache: "no-store" });
          if (!r.ok) throw new Error(path + " answered " + r.status);
          return r.json();
        }

        function showSummary(listing) {
          const s = listing.status, now = performance.now();
          const counts = new Map(listing.flows.map((f) => [f.id, f.bytesToServer + f.bytesToDevice]));
          if (previous) {
            let delta = 0;
            for (const [id, b] of counts) { const was = previous.counts.get(id); if (was !== undefined && b > was) delta += b - was; }
            const rate = delta / Math.max(0.001, (now - previous.time) / 1000);
            rates.push(rate); if (rates.length > 60) rates.shift();
            $("throughput").textContent = bits(rate);
            const top = Math.max(1, ...rates);
            $("spark").firstElementChild.setAttribute("points",
              rates.map((r, i) => (i * 4) + "," + (38 - r / top * 36).toFixed(1)).join(" "));
          }
          previous = { time: now, counts };
          $("flow-count").textContent = s.flows + (listing.total > listing.flows.length ? " (" + listing.flows.length + " listed)" : "");
          $("nat-ports").textContent = "NAT ports " + s.natPortsInUse + " of " + s.natPortsCapacity;
          $("kernel-share").textContent = s.kernelPathFlows + " of " + s.flows + " flows" +
            (s.flows ? " (" + Math.round(100 * s.kernelPathFlows / s.flows) + "%)" : "");
          let all = 0, kernel = 0;
          for (const f of listing.flows) { const b = f.bytesToServer + f.bytesToDevice; all += b; if (f.inKernel) kernel += b; }
          $("kernel-bytes").textContent = all ? Math.round(100 * kernel / all) + "% of the listed flows' bytes" : "no bytes yet";
          const drops = Object.entries(s.drops).sort((a, b) => b[1] - a[1]);
          $("drops").tBodies[0].replaceChildren(...(drops.length ? drops.map(([reason, n]) => row([[reason], [String(n), "n"]], { reason }))
                                                               : [empty(2, "none")]));
        }

        function showFlows(listing) {
          const rows = listing.flows.map((f) => {
            return row([[String(f.id), "n"], [f.device.address + ":" + f.device.port], [f.server.address + ":" + f.server.port],
                        [f.nat.address + ":" + f.nat.port], [f.state], [size(f.bytesToServer), "n"], [size(f.bytesToDevice), "n"],
                        [f.rate === undefined ? "–" : bits(f.rate), "n"], [f.idleSeconds.toFixed(1) + " s", "n"],
                        [f.inKernel ? "kernel" : "proxy"],
                        [f.migration === undefined || f.migration === null ? "" : f.migration + " " + (f.migrationPhase || "")]],
                       { flow: f.id });
          });
          $("flows").tBodies[0].replaceChildren(...(rows.length ? rows : [empty(11, "no flows")]));
        }

        function endpoint(e) { return e ? e.address + ":" + e.port : ""; }
        function showMigrations(listing) {
          const list = listing.migrations.slice().sort((a, b) => b.id - a.id);
          const rows = list.map((m) => row([
            [String(m.id), "n"], [String(m.flow), "n"],
            [endpoint(m.oldDevice) + " → " + (m.newDevice ? endpoint(m.newDevice) : m.target.address)],
            [m.phase, "phase"],
            [m.phases.map((p) => p.phase + " " + p.seconds.toFixed(3)).join(" → "), "phases"],
            [m.cutOffsetToDevice === undefined ? "" : size(m.cutOffsetToDevice), "n"],
            [m.cutOffsetToServer === undefined ? "" : size(m.cutOffsetToServer), "n"],
            [size(m.bytesCached), "n"], [m.reason || ""]], { migration: m.id, phase: m.phase }));
          $("migrations").tBodies[0].replaceChildren(...(rows.length ? rows : [empty(9, "no migrations yet")]));
          // The latest four pictures, drawn again only when a migration's phase changed.
          const shown = list.slice(0, 4), keep = new Set(shown.map((m) => String(m.id)));
          for (const [id, p] of pictures) if (!keep.has(id)) { p.figure.remove(); pictures.delete(id); }
          for (const m of shown.slice().reverse()) {
            const id = String(m.id), had = pictures.get(id);
            if (had && had.phase === m.phase) continue;
            const figure = document.createElement("figure"), img = document.createElement("img"), caption = document.createElement("figcaption");
            img.alt = "sequence-time graph of migration " + id;
            img.dataset.migration = id;
            img.onload = () => { img.dataset.loaded = img.naturalWidth + "x" + img.naturalHeight; };
            img.onerror = () => { img.dataset.loaded = "error"; };
            img.src = "/v1/migrations/svg?id=" + encodeURIComponent(id) + "&phase=" + encodeURIComponent(m.phase);
            caption.textContent = "migration " + id + " (flow " + m.flow + "): " + m.phase;
            figure.append(img, caption);
            if (had) had.figure.replaceWith(figure); else $("pictures").prepend(figure);
            pictures.set(id, { phase: m.phase, figure });
          }
        }

        // The media sessions (RTSP/RTP through the relay); null when the proxy relays none.
        function showMedia(listing) {
          $("media-section").hidden = listing === null;
          if (listing === null) return;
          const rows = listing.sessions.map((m) => row([
            [m.id], [m.device], [m.url], [m.codec || ""], [m.state], [String(m.packets), "n"],
            [m.fractionLost === undefined || m.fractionLost === null ? "–" : (100 * m.fractionLost).toFixed(1) + "%", "n"],
            [m.jitter === undefined || m.jitter === null ? "–" : String(m.jitter), "n"],
            [m.migration ? m.migration + (m.migratingTo ? " → " + m.migratingTo : "") : ""]], { media: m.id, state: m.state }));
          $("media").tBodies[0].replaceChildren(...(rows.length ? rows : [empty(9, "no media sessions")]));
        }
        async function media() {
          const r = await fetch("/v1/media", { cache: "no-store" });
          if (r.status === 404) return null;
          if (!r.ok) throw new Error("/v1/media answered " + r.status);
          return r.json();
        }

        async function refresh() {
          try {
            const [flows, migrations, sessions] = await Promise.all([get("/v1/flows?limit=500"), get("/v1/migrations?limit=20"), media()]);
            const dt = previous ? (performance.now() - previous.time) / 1000 : 0;
            for (const f of flows.flows) {
              const was = previous ? previous.counts.get(f.id) : undefined;
              if (was !== undefined && dt > 0) f.rate = Math.max(0, f.bytesToServer + f.bytesToDevice - was) / dt;
            }
            showSummary(flows);
            showFlows(flows);
            showMigrations(migrations);
            showMedia(sessions);
            $("updated").textContent = "updated " + new Date().toLocaleTimeString();
            document.body.dataset.state = "ok";
          } catch (e) {
            $("updated").textContent = "cannot read the proxy: " + e.message;
            document.body.dataset.state = "error";
          }
        }
        refresh();
        setInterval(refresh, 2000);
        </script>
        </body></html>

        """#
}
