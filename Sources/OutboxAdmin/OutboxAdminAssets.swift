/// The admin page: one HTML document, its script and its style, served by the binary itself (no
/// CDN, works offline). The script builds every element with `textContent`, never `innerHTML`,
/// so keys, types, headers, reasons and payloads are shown as text whatever they hold.
enum OutboxAdminAssets {
    static let page = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Outbox admin</title>
        <link rel="stylesheet" href="/admin.css">
        <script src="/admin.js" defer></script>
        </head>
        <body>
        <header><h1>Outbox admin</h1><span id="sampled">reading the store…</span></header>
        <main>
        <section class="cards" aria-label="Counts">
          <div class="card"><span class="label">Pending</span><span class="value" id="count-pending">–</span></div>
          <div class="card"><span class="label">Waiting for a retry</span><span class="value" id="count-retrying">–</span></div>
          <div class="card"><span class="label">In flight</span><span class="value" id="count-in-flight">–</span></div>
          <div class="card"><span class="label">Dead letters</span><span class="value" id="count-dead">–</span></div>
          <div class="card"><span class="label">Delivered, retained</span><span class="value" id="count-retained">–</span></div>
          <div class="card"><span class="label">Oldest pending</span><span class="value" id="oldest-age">–</span></div>
        </section>
        <section>
          <h2>Throughput, last 15 minutes</h2>
          <svg id="chart" viewBox="0 0 600 160" role="img" aria-label="Messages published per second"></svg>
          <p class="legend"><span class="swatch published"></span> published per second <span class="swatch pending"></span> pending</p>
        </section>
        <section>
          <h2>Relays</h2>
          <table id="relays"><thead><tr><th>Relay</th><th>Partitions</th><th>In flight</th><th>Published</th><th>Registration expires</th></tr></thead><tbody></tbody></table>
        </section>
        <section>
          <h2>Partitions</h2>
          <table id="leases"><thead><tr><th>Owner</th><th>Partitions</th><th>Count</th><th>Leases expire</th></tr></thead><tbody></tbody></table>
        </section>
        <section>
          <h2>Dead letters</h2>
          <div class="actions">
            <button id="retry-selected" type="button">Retry selected</button>
            <button id="discard-selected" type="button">Discard selected</button>
            <span id="action-result" role="status"></span>
          </div>
          <table id="dead-letters"><thead><tr><th></th><th>Sequence</th><th>Topic</th><th>Key</th><th>Type</th><th>Attempts</th><th>Reason</th><th>Failed</th><th>Headers</th><th>Payload</th></tr></thead><tbody></tbody></table>
          <button id="more-dead-letters" type="button" hidden>Show more</button>
        </section>
        </main>
        </body>
        </html>
        """

    static let style = """
        body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1c2430; background: #f5f6f8; }
        header { display: flex; align-items: baseline; gap: 1rem; padding: 0.8rem 1.5rem; background: #1c2430; color: #fff; }
        header h1 { font-size: 1.2rem; margin: 0; }
        main { padding: 1rem 1.5rem; }
        h2 { font-size: 1rem; margin: 1.2rem 0 0.4rem; }
        .cards { display: flex; flex-wrap: wrap; gap: 0.8rem; }
        .card { background: #fff; border-radius: 6px; padding: 0.6rem 1rem; min-width: 9rem; box-shadow: 0 1px 2px #0002; }
        .card .label { display: block; color: #5a6472; font-size: 0.8rem; }
        .card .value { font-size: 1.5rem; font-variant-numeric: tabular-nums; }
        table { border-collapse: collapse; background: #fff; width: 100%; box-shadow: 0 1px 2px #0002; }
        th, td { text-align: left; padding: 0.3rem 0.6rem; border-bottom: 1px solid #e4e7eb; vertical-align: top; }
        td.text { font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; max-width: 24rem; }
        svg { background: #fff; width: 600px; max-width: 100%; height: auto; box-shadow: 0 1px 2px #0002; }
        svg .published { fill: none; stroke: #2b6cb0; stroke-width: 2; }
        svg .pending { fill: none; stroke: #c05621; stroke-width: 1.5; stroke-dasharray: 4 3; }
        svg text { font-size: 10px; fill: #5a6472; }
        .legend .swatch { display: inline-block; width: 1rem; height: 0.2rem; vertical-align: middle; }
        .legend .published { background: #2b6cb0; }
        .legend .pending { background: #c05621; }
        .actions { display: flex; gap: 0.6rem; align-items: center; margin-bottom: 0.4rem; }
        .error { color: #b00020; }
        """

    static let script = """
        "use strict";
        const headers = { "Content-Type": "application/json", "X-Outbox-Admin": "1" };
        let lastDeadSequence = null;

        function cell(row, text, className) {
          const td = document.createElement("td");
          td.textContent = text === null || text === undefined ? "–" : String(text);
          if (className) td.className = className;
          row.appendChild(td);
          return td;
        }

        function seconds(value) {
          if (value === null || value === undefined) return "–";
          if (value < 1) return Math.round(value * 1000) + " ms";
          if (value < 120) return value.toFixed(1) + " s";
          if (value < 7200) return Math.round(value / 60) + " min";
          return (value / 3600).toFixed(1) + " h";
        }

        function fromNow(at) {
          if (!at) return "–";
          const delta = at - Date.now() / 1000;
          return delta >= 0 ? "in " + seconds(delta) : seconds(-delta) + " ago";
        }

        function ranges(numbers) {
          const parts = [];
          let start = null, previous = null;
          for (const n of [...numbers].sort((a, b) => a - b).concat([Infinity])) {
            if (previous !== null && n === previous + 1) { previous = n; continue; }
            if (start !== null) parts.push(start === previous ? String(start) : start + "–" + previous);
            start = n; previous = n;
          }
          return parts.join(", ");
        }

        function setText(id, text) { document.getElementById(id).textContent = text; }

        function drawChart(points) {
          const svg = document.getElementById("chart");
          while (svg.firstChild) svg.removeChild(svg.firstChild);
          const ns = "http://www.w3.org/2000/svg";
          const width = 600, height = 160, left = 40, bottom = 20;
          const now = Date.now() / 1000, start = now - 15 * 60;
          const maxRate = Math.max(1, ...points.map(p => p.publishedPerSecond));
          const maxPending = Math.max(1, ...points.map(p => p.pending));
          const x = at => left + (width - left - 5) * Math.max(0, at - start) / (now - start);
          const line = (value, max, className) => {
            if (points.length < 2) return;
            const path = document.createElementNS(ns, "polyline");
            path.setAttribute("class", className);
            path.setAttribute("points", points.map(p => x(p.at).toFixed(1) + "," +
              (height - bottom - (height - bottom - 10) * value(p) / max).toFixed(1)).join(" "));
            svg.appendChild(path);
          };
          line(p => p.publishedPerSecond, maxRate, "published");
          line(p => p.pending, maxPending, "pending");
          const label = (text, lx, ly) => {
            const t = document.createElementNS(ns, "text");
            t.setAttribute("x", lx); t.setAttribute("y", ly); t.textContent = text; svg.appendChild(t);
          };
          label(Math.round(maxRate) + "/s", 2, 14);
          label("0", 2, height - bottom);
          label("15 min ago", left, height - 4);
          label("now", width - 30, height - 4);
        }

        async function refreshOverview() {
          try {
            const response = await fetch("/api/overview", { credentials: "same-origin" });
            if (!response.ok) { setText("sampled", await response.text()); return; }
            const o = await response.json();
            setText("count-pending", o.pending);
            setText("count-retrying", o.retrying);
            setText("count-in-flight", o.inFlight);
            setText("count-dead", o.dead);
            setText("count-retained", o.deliveredRetained);
            setText("oldest-age", seconds(o.oldestPendingAgeSeconds));
            const sampled = document.getElementById("sampled");
            sampled.textContent = "read " + new Date(o.sampledAt * 1000).toLocaleTimeString() + (o.error ? " — latest read failed: " + o.error : "");
            sampled.className = o.error ? "error" : "";
            drawChart(o.throughput);
            const relays = document.querySelector("#relays tbody");
            relays.replaceChildren();
            for (const relay of o.relays) {
              const row = relays.insertRow();
              cell(row, relay.relayID, "text");
              cell(row, relay.partitions.length);
              cell(row, relay.inFlight);
              cell(row, relay.published);
              cell(row, fromNow(relay.expiresAt));
            }
            // One row per owner (and one for free partitions), partitions as ranges: a store of
            // 256 partitions stays a short table.
            const owners = new Map();
            for (const lease of o.leases) {
              const owner = lease.owner == null ? null : lease.owner;
              if (!owners.has(owner)) owners.set(owner, []);
              owners.get(owner).push(lease);
            }
            const leases = document.querySelector("#leases tbody");
            leases.replaceChildren();
            for (const [owner, held] of owners) {
              const row = leases.insertRow();
              row.dataset.count = String(held.length);
              cell(row, owner === null ? "free" : owner, "text");
              cell(row, ranges(held.map(l => l.partition)), "text");
              cell(row, held.length);
              const expiries = held.map(l => l.expiresAt);
              cell(row, owner === null ? "–" : fromNow(Math.min(...expiries)) + (Math.max(...expiries) - Math.min(...expiries) > 1 ? " to " + fromNow(Math.max(...expiries)) : ""));
            }
          } catch (error) {
            setText("sampled", "The admin server did not answer: " + error);
          }
        }

        function addDeadLetter(body, letter) {
          const row = body.insertRow();
          row.dataset.sequence = String(letter.sequence);
          const pick = document.createElement("input");
          pick.type = "checkbox";
          pick.value = String(letter.sequence);
          pick.setAttribute("aria-label", "select dead letter " + letter.sequence);
          row.insertCell().appendChild(pick);
          cell(row, letter.sequence);
          cell(row, letter.topic, "text");
          cell(row, letter.key, "text key");
          cell(row, letter.type, "text");
          cell(row, letter.attempts);
          cell(row, letter.reason, "text");
          cell(row, new Date(letter.failedAt * 1000).toLocaleString());
          cell(row, letter.headers.map(h => h.name + ": " + h.value).join("\\n"), "text");
          cell(row, letter.payloadPreview + " (" + letter.payloadBytes + " bytes)", "text payload");
        }

        async function loadDeadLetters(reset) {
          const body = document.querySelector("#dead-letters tbody");
          if (reset) { body.replaceChildren(); lastDeadSequence = null; }
          const query = "limit=50" + (lastDeadSequence === null ? "" : "&after=" + lastDeadSequence);
          const response = await fetch("/api/dead-letters?" + query, { credentials: "same-origin" });
          if (!response.ok) { setText("action-result", await response.text()); return; }
          const letters = await response.json();
          for (const letter of letters) addDeadLetter(body, letter);
          if (letters.length > 0) lastDeadSequence = letters[letters.length - 1].sequence;
          document.getElementById("more-dead-letters").hidden = letters.length < 50;
        }

        async function act(action) {
          const sequences = [...document.querySelectorAll("#dead-letters input:checked")].map(box => Number(box.value));
          if (sequences.length === 0) { setText("action-result", "Select dead letters first."); return; }
          if (action === "discard" && !window.confirm("Discard " + sequences.length + " dead letters for good?")) return;
          const response = await fetch("/api/dead-letters/" + action, {
            method: "POST", credentials: "same-origin", headers, body: JSON.stringify({ sequences }) });
          if (!response.ok) { setText("action-result", await response.text()); return; }
          const result = await response.json();
          setText("action-result", (action === "retry" ? "Retried " : "Discarded ") + result.found + " of " + result.requested + ".");
          await loadDeadLetters(true);
          await refreshOverview();
        }

        document.addEventListener("DOMContentLoaded", () => {
          document.getElementById("retry-selected").addEventListener("click", () => act("retry"));
          document.getElementById("discard-selected").addEventListener("click", () => act("discard"));
          document.getElementById("more-dead-letters").addEventListener("click", () => loadDeadLetters(false));
          refreshOverview();
          loadDeadLetters(true);
          setInterval(refreshOverview, 2000);
        });
        """
}
