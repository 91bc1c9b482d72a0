import HopCapture
import HopCorrelation

/// The HTML report's chain table: every chain as compact JSON in a script element (`ChainRows`,
/// column by column), rendered a page at a time by the page's own script, filtered by kind of
/// problem or target, sorted by any column, and one chain's sequence diagram drawn on demand.
/// The chains the report kept whole carry their explanation, evidence and rules too.
extension HTMLReport {
    static func chainsSection(_ h: inout HTMLWriter, _ r: AnalysisReport, _ o: Options) {
        h.raw("<section id=\"chains\">\n<h2>Chains</h2>\n")
        let rows = r.chainRows
        if rows.count == 0 {
            h.raw("<p class=\"note\">\(r.chainCount == 0 ? "No HTTP requests were found in this capture." : "No chain table: this report was made without its rows.")</p>\n</section>\n")
            return
        }
        h.raw("<div class=\"controls\"><label>show <select id=\"chain-filter\">")
        for (value, label) in [("all", "every chain"), ("problems", "chains with a problem"), ("incomplete", "incomplete"),
                               ("retried", "retried"), ("5xx", "5xx"), ("reset", "reset"), ("ambiguous", "ambiguous"),
                               ("multi", "multi-hop"), ("direct", "direct")] {
            h.raw("<option value=\"\(value)\">\(label)</option>")
        }
        h.raw("</select></label> <label>target contains <input id=\"chain-search\" type=\"search\" size=\"24\" /></label> ")
        h.raw("<button id=\"chain-prev\" type=\"button\">‹ previous</button> <span id=\"chain-page\"></span> <button id=\"chain-next\" type=\"button\">next ›</button></div>\n")
        h.raw("<div class=\"scroll\">\n<table class=\"chains\" id=\"chain-table\">\n<thead><tr>")
        for (key, label, numeric) in [("id", "#", true), ("t", "start", true), ("r", "request", false), ("s", "status", true),
                                      ("h", "hops", true), ("c", "client", true), ("p", "proxy added", true), ("f", "problems", false)] {
            h.raw("<th data-key=\"\(key)\"\(numeric ? " class=\"num\"" : "")>\(label)</th>")
        }
        h.raw("</tr></thead>\n<tbody id=\"chain-rows\"></tbody>\n</table>\n</div>\n")
        h.raw("<div id=\"chain-detail\" class=\"detail\" hidden=\"hidden\"></div>\n")
        h.raw("<p class=\"note\">")
        h.text("\(TextReport.plural(rows.count, "chain")), 100 a page; click a row to draw its sequence diagram. Times are offsets from the capture's first chain (start) and durations.")
        if rows.left > 0 { h.text(" \(TextReport.plural(rows.left, "more chain")) past \(ChainRows.limit) are not in the table (--format json lists them).") }
        h.raw("</p>\n")
        h.raw("<script type=\"application/json\" id=\"chain-data\">")
        chainData(&h, r, o)
        h.raw("</script>\n</section>\n")
    }

    /// `{"t0", "strings", "id", "t", "m", "g", "s", "c", "p", "f", "hs", "hr", "ha", "hb", "hx", "x"}`:
    /// columns of `ChainRows` (times in µs: start from `t0`, durations; hop times from the
    /// chain's start, -1 when not captured), and `x` the kept chains' explanation, evidence and
    /// hops by id.
    static func chainData(_ h: inout HTMLWriter, _ r: AnalysisReport, _ o: Options) {
        let rows = r.chainRows
        let t0 = rows.starts.min() ?? 0
        var b = JSBytes()
        b.raw("{\"t0\":\(t0),\"strings\":[")
        for (i, s) in rows.strings.enumerated() {
            if i > 0 { b.raw(",") }
            b.string(s)
        }
        b.raw("]")
        func column<T>(_ name: String, _ values: [T], _ f: (T) -> Int64) {
            b.raw(",\"\(name)\":[")
            for (i, v) in values.enumerated() {
                if i > 0 { b.raw(",") }
                b.raw(String(f(v)))
            }
            b.raw("]")
        }
        func micro(_ ns: Int64) -> Int64 { ns < 0 ? -1 : (ns + 500) / 1000 }
        column("id", rows.ids) { Int64($0) }
        column("t", rows.starts) { micro($0 - t0) }
        column("m", rows.methods) { Int64($0) }
        column("g", rows.targets) { Int64($0) }
        column("s", rows.statuses) { Int64($0) }
        column("c", rows.clientTimes) { micro($0) }
        column("p", rows.proxyAdded) { $0 == -1 ? -1 : micro(max(0, $0)) }
        column("f", rows.flags) { Int64($0.rawValue) }
        column("hs", rows.hopStart) { Int64($0) }
        column("hr", rows.hopRoles) { Int64($0) }
        column("ha", rows.hopTimes) { micro($0.0) }
        column("hb", rows.hopTimes) { micro($0.1) }
        column("hx", rows.hopStatuses) { Int64($0) }
        b.raw(",\"x\":{")
        for (i, c) in r.chains.prefix(max(0, o.tableLimit)).enumerated() {
            if i > 0 { b.raw(",") }
            b.raw("\"\(c.id)\":{\"e\":")
            b.string(c.explanation)
            b.raw(",\"v\":")
            b.string(c.evidence.joined(separator: "; "))
            if case .incomplete(_, let advice) = c.completeness {
                b.raw(",\"a\":")
                b.string(advice)
            }
            b.raw(",\"h\":[")
            for (k, hop) in c.hops.enumerated() {
                if k > 0 { b.raw(",") }
                let cn = hop.connection
                var tuple = "\(cn.client) → \(cn.server)"
                if let od = cn.originalDestination { tuple += " (for \(od))" }
                if let iface = r.interface(of: hop) { tuple += " on \(iface)" }
                b.raw("[")
                b.string(tuple)
                b.raw(",")
                b.string(hop.rule.sentence)
                b.raw("]")
            }
            b.raw("]}")
        }
        b.raw("}}")
        h.bytes.append(contentsOf: b.bytes)
    }

    /// The page's script: the chain table, the sortable tables, the diagrams on demand. It
    /// records how long the page took to render (`data-render-ms` on the body) and any error
    /// (`data-errors`), which the browser test reads.
    static let script = #"""
    (function () {
      'use strict';
      var errors = [];
      window.addEventListener('error', function (e) { errors.push(String(e.message || e)); });
      document.addEventListener('securitypolicyviolation', function (e) { errors.push('CSP ' + e.violatedDirective); });
      var body = document.body;
      function el(name, attrs, text) {
        var e = document.createElement(name);
        if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
        if (text !== undefined && text !== null) e.textContent = text;
        return e;
      }
      function dur(us) {
        if (us < 0) return '\u2013';
        if (us < 1000) return us + ' \u00b5s';
        if (us < 1000000) return (us / 1000).toFixed(2) + ' ms';
        return (us / 1000000).toFixed(3) + ' s';
      }
      // Tables whose headings sort them (the routes): each cell's data-v, numbers or text.
      function sortable(table) {
        var heads = table.tHead.rows[0].cells;
        Array.prototype.forEach.call(heads, function (th, col) {
          th.classList.add('sortable-head');
          th.addEventListener('click', function () {
            var tb = table.tBodies[0];
            var rows = Array.prototype.slice.call(tb.rows);
            var asc = th.getAttribute('data-order') !== 'asc';
            Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('data-order'); });
            th.setAttribute('data-order', asc ? 'asc' : 'desc');
            var text = th.getAttribute('data-type') === 'text';
            rows.sort(function (a, b) {
              var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
              var d = text ? (x < y ? -1 : x > y ? 1 : 0) : Number(x) - Number(y);
              return asc ? d : -d;
            });
            rows.forEach(function (r) { tb.appendChild(r); });
          });
        });
      }
      Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), sortable);

      var dataNode = document.getElementById('chain-data');
      if (dataNode) {
        var D = JSON.parse(dataNode.textContent);
        var S = D.strings, n = D.id.length, PAGE = 100;
        var ROLES = ['inbound-intercepted', 'inbound-forwarded', 'outbound-redirected', 'outbound-forwarded', 'direct'];
        var FLAGS = [[1, 'incomplete'], [2, 'retried'], [4, 'ambiguous'], [8, '5xx'], [16, 'reset']];
        var index = {};
        for (var i = 0; i < n; i++) index[D.id[i]] = i;
        var order = [], page = 0, sortKey = 'id', asc = true;
        var tbody = document.getElementById('chain-rows');
        var filter = document.getElementById('chain-filter'), search = document.getElementById('chain-search');
        var pageLabel = document.getElementById('chain-page'), detail = document.getElementById('chain-detail');
        function hops(i) { return D.hs[i + 1] - D.hs[i]; }
        function keep(i, what, needle) {
          var f = D.f[i];
          if (what === 'problems' && !(f & 31)) return false;
          if (what === 'incomplete' && !(f & 1)) return false;
          if (what === 'retried' && !(f & 2)) return false;
          if (what === 'ambiguous' && !(f & 4)) return false;
          if (what === '5xx' && !(f & 8)) return false;
          if (what === 'reset' && !(f & 16)) return false;
          if (what === 'direct' && !(f & 32)) return false;
          if (what === 'multi' && hops(i) < 2) return false;
          if (needle && S[D.g[i]].indexOf(needle) < 0) return false;
          return true;
        }
        function value(i, key) {
          switch (key) {
            case 'id': return D.id[i];
            case 't': return D.t[i];
            case 's': return D.s[i];
            case 'h': return hops(i);
            case 'c': return D.c[i];
            case 'p': return D.p[i];
            case 'f': return D.f[i] & 31;
            default: return 0;
          }
        }
        function select() {
          var what = filter.value, needle = search.value;
          order = [];
          for (var i = 0; i < n; i++) if (keep(i, what, needle)) order.push(i);
          if (sortKey === 'r') {
            order.sort(function (a, b) { var x = S[D.m[a]] + ' ' + S[D.g[a]], y = S[D.m[b]] + ' ' + S[D.g[b]]; return (x < y ? -1 : x > y ? 1 : D.id[a] - D.id[b]) * (asc ? 1 : -1); });
          } else if (sortKey !== 'id' || !asc) {
            order.sort(function (a, b) { var d = value(a, sortKey) - value(b, sortKey); return (d || D.id[a] - D.id[b]) * (asc ? 1 : -1); });
          }
        }
        function render() {
          var pages = Math.max(1, Math.ceil(order.length / PAGE));
          page = Math.max(0, Math.min(page, pages - 1));
          var frag = document.createDocumentFragment();
          for (var k = page * PAGE; k < Math.min(order.length, (page + 1) * PAGE); k++) {
            var i = order[k], f = D.f[i];
            var tr = el('tr', { id: 'chain-' + D.id[i], 'data-index': String(i) });
            if (f & 1) tr.className = 'incomplete';
            tr.appendChild(el('td', { 'class': 'num' }, String(D.id[i])));
            tr.appendChild(el('td', { 'class': 'num' }, '+' + dur(D.t[i])));
            var req = el('td');
            req.appendChild(el('span', { 'class': 'method' }, S[D.m[i]]));
            req.appendChild(document.createTextNode(' '));
            req.appendChild(el('code', { 'class': 'target' }, S[D.g[i]]));
            tr.appendChild(req);
            tr.appendChild(el('td', { 'class': 'num' + (D.s[i] >= 500 ? ' bad' : '') }, D.s[i] ? String(D.s[i]) : '\u2013'));
            tr.appendChild(el('td', { 'class': 'num' }, String(hops(i))));
            tr.appendChild(el('td', { 'class': 'num' }, dur(D.c[i])));
            tr.appendChild(el('td', { 'class': 'num' }, dur(D.p[i])));
            var names = [];
            FLAGS.forEach(function (p) { if (f & p[0]) names.push(p[1]); });
            tr.appendChild(el('td', { 'class': 'flags' }, names.join(', ')));
            frag.appendChild(tr);
          }
          tbody.textContent = '';
          tbody.appendChild(frag);
          pageLabel.textContent = 'page ' + (page + 1) + ' of ' + pages + ' (' + order.length + ' chains)';
        }
        var SVGNS = 'http://www.w3.org/2000/svg';
        function svg(name, attrs, text) {
          var e = document.createElementNS(SVGNS, name);
          for (var k in attrs) e.setAttribute(k, attrs[k]);
          if (text !== undefined) e.textContent = text;
          return e;
        }
        // One chain's sequence diagram: a lifeline for the client (or the app calling out), the
        // sidecar proxy and the app (or the remote); requests solid, responses dashed.
        function diagram(i) {
          var first = D.hr[D.hs[i]], lanes;
          if (first === 4) lanes = ['client', 'server'];
          else if (first === 2 || first === 3) lanes = ['app (calling out)', 'sidecar proxy', 'remote'];
          else lanes = ['client', 'sidecar proxy', 'app'];
          var events = [];
          for (var k = D.hs[i]; k < D.hs[i + 1]; k++) {
            var role = D.hr[k], up = role === 1 || role === 3, a = up ? 1 : 0, b = first === 4 ? 1 : a + 1;
            var label = S[D.m[i]] + ' ' + S[D.g[i]];
            if (D.ha[k] >= 0) events.push({ t: D.ha[k], from: a, to: b, text: label, resp: false, role: role });
            else events.push({ t: D.hb[k] - 0.5, from: a, to: b, text: 'request not captured', resp: false, lost: true, role: role });
            if (D.hb[k] >= 0) events.push({ t: D.hb[k], from: b, to: a, text: D.hx[k] ? String(D.hx[k]) : 'response', resp: true, role: role });
            else events.push({ t: Math.max(D.ha[k], 0) + 0.5, from: b, to: a, text: 'no response', resp: true, lost: true, role: role });
          }
          events.sort(function (x, y) { return x.t - y.t; });
          var colW = 230, W = lanes.length * colW + 40, top = 56, step = 46, H = top + events.length * step + 24;
          var s = svg('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, 'class': 'sequence', role: 'img' });
          var defs = svg('defs', {});
          var marker = svg('marker', { id: 'dyn-head', viewBox: '0 0 10 10', refX: '9', refY: '5', markerWidth: '8', markerHeight: '8', orient: 'auto-start-reverse' });
          marker.appendChild(svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#333' }));
          defs.appendChild(marker);
          s.appendChild(defs);
          function x(l) { return 20 + colW / 2 + l * colW; }
          lanes.forEach(function (name, l) {
            s.appendChild(svg('line', { 'class': 'lifeline', x1: x(l), y1: 44, x2: x(l), y2: H - 10 }));
            s.appendChild(svg('rect', { 'class': 'actor' + (l === 1 && lanes.length === 3 ? ' proxy' : ''), x: x(l) - colW / 2 + 14, y: 10, width: colW - 28, height: 34, rx: 6 }));
            s.appendChild(svg('text', { 'class': 'actor-kind', x: x(l), y: 32 }, name));
          });
          events.forEach(function (e, k) {
            var y = top + k * step + 20;
            s.appendChild(svg('line', { 'class': 'msg' + (e.resp ? ' response' : '') + (e.lost ? ' lost' : ''), x1: x(e.from), y1: y, x2: x(e.to), y2: y, 'marker-end': 'url(#dyn-head)' }));
            var mid = (x(e.from) + x(e.to)) / 2;
            s.appendChild(svg('text', { 'class': 'msg-text', x: mid, y: y - 6 }, e.text));
            s.appendChild(svg('text', { 'class': 'msg-detail', x: mid, y: y + 14 }, (e.lost ? '' : '+' + dur(Math.round(e.t))) + ' \u00b7 ' + ROLES[e.role]));
          });
          return s;
        }
        function show(i) {
          detail.textContent = '';
          detail.hidden = false;
          var id = D.id[i];
          detail.appendChild(el('h3', null, 'chain ' + id + ': ' + S[D.m[i]] + ' ' + S[D.g[i]] + ' \u2192 ' + (D.s[i] || 'no response')));
          var facts = 'client ' + dur(D.c[i]) + (D.p[i] >= 0 ? ', proxy added ' + dur(D.p[i]) : '') + ', ' + hops(i) + (hops(i) === 1 ? ' hop' : ' hops');
          detail.appendChild(el('p', { 'class': 'note' }, facts));
          var wrap = el('div', { 'class': 'scroll' });
          wrap.appendChild(diagram(i));
          detail.appendChild(wrap);
          var x = D.x[id];
          if (x) {
            detail.appendChild(el('p', null, x.e));
            if (x.a) detail.appendChild(el('p', { 'class': 'advice' }, x.a));
            if (x.v) detail.appendChild(el('p', { 'class': 'note' }, 'evidence: ' + x.v));
            var ol = el('ol', { 'class': 'hops' });
            x.h.forEach(function (hop, k) { ol.appendChild(el('li', null, ROLES[D.hr[D.hs[i] + k]] + ' ' + hop[0] + ' \u2014 ' + hop[1])); });
            detail.appendChild(ol);
          } else {
            detail.appendChild(el('p', { 'class': 'note' }, 'The explanation and evidence of this chain: hoptrace analyze FILE --chain ' + id));
          }
        }
        function open(id, later) {
          var i = index[id];
          if (i === undefined) return;
          filter.value = 'all';
          search.value = '';
          sortKey = 'id'; asc = true;
          select();
          page = Math.floor(order.indexOf(i) / PAGE);
          render();
          show(i);
          // Opened from the address (#chain-N): scrolled to once the page is laid out.
          if (later) window.addEventListener('load', function () { detail.scrollIntoView(); });
          else detail.scrollIntoView();
        }
        filter.addEventListener('change', function () { page = 0; select(); render(); });
        search.addEventListener('input', function () { page = 0; select(); render(); });
        document.getElementById('chain-prev').addEventListener('click', function () { page--; render(); });
        document.getElementById('chain-next').addEventListener('click', function () { page++; render(); });
        tbody.addEventListener('click', function (e) {
          var tr = e.target.closest('tr');
          if (tr) show(Number(tr.getAttribute('data-index')));
        });
        Array.prototype.forEach.call(document.querySelectorAll('#chain-table th'), function (th) {
          th.classList.add('sortable-head');
          th.addEventListener('click', function () {
            var key = th.getAttribute('data-key');
            asc = sortKey === key ? !asc : true;
            sortKey = key;
            select();
            render();
          });
        });
        document.addEventListener('click', function (e) {
          var a = e.target.closest('a[data-chain]');
          if (!a) return;
          e.preventDefault();
          open(Number(a.getAttribute('data-chain')));
        });
        select();
        render();
        var m = /^#chain-(\d+)$/.exec(location.hash);
        if (m) open(Number(m[1]), true);
        body.setAttribute('data-chains', String(n));
      }
      body.setAttribute('data-render-ms', String(Math.round(performance.now())));
      // What the page drew, for a reader without eyes (the browser test).
      body.setAttribute('data-drawn', ['latency', 'timeline', 'routes', 'problems', 'chains'].filter(function (id) {
        var e = document.getElementById(id);
        return e && e.getBoundingClientRect().height > 0;
      }).join(' '));
      window.setTimeout(function () { body.setAttribute('data-errors', JSON.stringify(errors)); }, 0);
      body.setAttribute('data-errors', JSON.stringify(errors));
    })();
    """#
}

/// JSON for a script element: strings escaped so that no `<`, `>`, `&` or line separator
/// appears raw (the element's text can never close it or start a comment).
struct JSBytes {
    var bytes: [UInt8] = []

    mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

    mutating func string(_ s: String) {
        bytes.append(0x22)
        for u in s.unicodeScalars {
            switch u {
            case "\"": raw("\\\"")
            case "\\": raw("\\\\")
            case "<", ">", "&", "\u{2028}", "\u{2029}": raw(hex(u.value))
            default:
                if u.value < 0x20 || (u.value >= 0x7f && u.value < 0xa0) {
                    raw(hex(u.value))
                } else {
                    bytes.append(contentsOf: String(u).utf8)
                }
            }
        }
        bytes.append(0x22)
    }

    private func hex(_ v: UInt32) -> String {
        let digits = Array("0123456789abcdef")
        return "\\u" + String([digits[Int(v >> 12 & 15)], digits[Int(v >> 8 & 15)], digits[Int(v >> 4 & 15)], digits[Int(v & 15)]])
    }
}
