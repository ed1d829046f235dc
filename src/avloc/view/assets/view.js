/* avloc view: the page of `avloc view OUT` (written by avloc/view/build.py).
 *
 * index.js calls avlocIndex(index) with one row per video; a video's tracks come from
 * data/NNNNNN.js, loaded by a <script> tag when the video is opened (browsers refuse
 * fetch() from disk), which calls avlocVideo(n, doc). Charts are Apache ECharts: one
 * instance, one grid per track (ground truth, predicted, activation, mu) on linked time
 * axes; segments and activation rows are custom series.
 */
'use strict';
(function () {
  const KIND_NAMES = {
    tp: 'correct', boundaries: 'poor boundaries', wrong_class: 'wrong class',
    false_positive: 'false positive', missed: 'missed instance', '': 'not judged',
  };
  const KIND_COLORS = {
    tp: '#2b6cb0', boundaries: '#e08e0b', wrong_class: '#8e44ad', false_positive: '#c0392b',
    '': '#7f8c8d',
  };
  const PRED_COLOR = '#2b6cb0';
  const GT_COLOR = '#2ca02c';
  const MISSED_COLOR = '#e74c3c';
  const HEAT_STOPS = [[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];
  const LANE_H = 20;   // pixels per lane of a track
  const LEFT = 150;    // room for lane labels

  let INDEX = null;
  let shown = [];          // indices of the rows passing the filters, in display order
  let sortKey = null;
  let sortDir = 1;
  let chart = null;
  let view = null;         // the open video: {n, doc, row, heat: [Uint8Array], mu, layout}
  const loaded = {};       // n -> doc
  const waiting = {};      // n -> resolve

  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"']/g,
    (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
  const fmt = (x, d) => (x === null || x === undefined ? '' : Number(x).toFixed(d));

  function clock(t) {
    if (t < 60) return t.toFixed(t < 10 ? 2 : 1) + ' s';
    const m = Math.floor(t / 60);
    const s = t - 60 * m;
    return m + ':' + (s < 10 ? '0' : '') + s.toFixed(1);
  }

  function bytes(b64) {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  // ---- the index ------------------------------------------------------------------------
  window.avlocIndex = function (index) {
    INDEX = index;
    $('title').textContent = 'avloc results: ' + index.title;
    document.title = 'avloc: ' + index.title;
    $('summary').innerHTML = summaryHtml(index);
    fillFilters(index);
    buildHead();
    buildAp(index);
    applyFilters();
    window.addEventListener('hashchange', openFromHash);
    window.addEventListener('resize', () => chart && chart.resize());
    performance.mark('avloc-index');  // benchmarks/bench_view.py reads it
    openFromHash();
  };

  function summaryHtml(ix) {
    const parts = [ix.videos.length + ' videos'];
    if (ix.task) parts.push(ix.task + ' model');
    if (ix.ap) {
      const first = ix.ap.tiou[0];
      parts.push('mAP@' + first + ' ' + fmt(100 * ix.ap.mAP[first], 1) + ' %');
      parts.push('average mAP (' + ix.ap.tiou[0] + ':' + ix.ap.tiou[ix.ap.tiou.length - 1] + ') '
                 + fmt(100 * ix.ap.average_mAP, 1) + ' %');
      parts.push(ix.ap.instances + ' ground-truth instances');
      parts.push('outcomes at tIoU ' + ix.diagnose_tiou + ', each video\'s G best detections'
                 + ' judged (G = its instances)');
    } else {
      parts.push('no ground truth (avloc view OUT --gt GT.json adds it)');
    }
    return esc(parts.join(' · '));
  }

  function fillFilters(ix) {
    const classes = new Set();
    for (const r of ix.videos) {
      r.gt_classes.forEach((c) => classes.add(c));
      r.pred_classes.forEach((c) => classes.add(c));
    }
    $('f-class').insertAdjacentHTML('beforeend', [...classes].sort()
      .map((c) => '<option>' + esc(c) + '</option>').join(''));
    if (ix.has_truth) {
      const opts = ix.kinds.filter((k) => k !== 'tp')
        .map((k) => '<option value="' + k + '">' + KIND_NAMES[k] + '</option>');
      opts.push('<option value="none">no error</option>');
      $('f-error').insertAdjacentHTML('beforeend', opts.join(''));
    } else {
      $('f-error').hidden = true;
    }
    for (const id of ['f-text', 'f-class', 'f-error', 'f-score']) {
      $(id).addEventListener('input', applyFilters);
    }
  }

  function columns() {
    const cols = [
      {key: 'id', title: 'video'},
      {key: 'duration', title: 'length', num: true, show: (r) => clock(r.duration)},
      {key: 'top', title: 'top class'},
      {key: 'score', title: 'score', num: true, show: (r) => fmt(r.score, 3)},
      {key: 'segments', title: 'segs', num: true, tip: 'predicted segments'},
    ];
    if (INDEX.has_truth) {
      cols.push({key: 'gt', title: 'truth', value: (r) => r.gt_classes.join(', ')});
      cols.push({key: 'errors', title: 'errors', tip: 'judged at tIoU ' + INDEX.diagnose_tiou
                 + ': missed instances, false positives, wrong class, poor boundaries',
                 num: true, error: true, value: errorCount, show: errorText});
    }
    return cols;
  }

  function buildHead() {
    $('videos').querySelector('thead').innerHTML = '<tr>' + columns().map((c) =>
      '<th data-key="' + c.key + '"' + (c.num ? ' class="num"' : '') + ' title="'
      + esc(c.tip || c.title) + '">' + esc(c.title) + '</th>').join('') + '</tr>';
    $('videos').querySelector('thead').addEventListener('click', (e) => {
      const th = e.target.closest('th');
      if (!th) return;
      sortDir = sortKey === th.dataset.key ? -sortDir : (th.classList.contains('num') ? -1 : 1);
      sortKey = th.dataset.key;
      applyFilters();
    });
    $('videos').querySelector('tbody').addEventListener('click', (e) => {
      const tr = e.target.closest('tr');
      if (tr) location.hash = 'video=' + encodeURIComponent(INDEX.videos[+tr.dataset.n].id);
    });
  }

  function cellValue(col, r) {
    return col.value ? col.value(r) : r[col.key];
  }

  function applyFilters() {
    const text = $('f-text').value.trim().toLowerCase();
    const cls = $('f-class').value;
    const err = $('f-error').value;
    const minScore = parseFloat($('f-score').value);
    const cols = columns();
    shown = [];
    INDEX.videos.forEach((r, n) => {
      if (text && !r.id.toLowerCase().includes(text)) return;
      if (cls && !r.gt_classes.includes(cls) && !r.pred_classes.includes(cls)) return;
      if (!isNaN(minScore) && !(r.score >= minScore)) return;
      if (err === 'none' && errorCount(r) > 0) return;
      if (err && err !== 'none' && !(r.errors[err] > 0)) return;
      shown.push(n);
    });
    if (sortKey) {
      const col = cols.find((c) => c.key === sortKey);
      shown.sort((a, b) => compare(cellValue(col, INDEX.videos[a]),
                                   cellValue(col, INDEX.videos[b])) * sortDir || a - b);
    }
    for (const th of $('videos').querySelectorAll('th')) {
      th.classList.toggle('sorted', th.dataset.key === sortKey);
      th.classList.toggle('desc', th.dataset.key === sortKey && sortDir < 0);
    }
    $('videos').querySelector('tbody').innerHTML = shown.map((n) => rowHtml(cols, n)).join('');
    $('count').textContent = shown.length + ' of ' + INDEX.videos.length + ' videos';
  }

  function errorText(r) {
    const short = {missed: 'miss', false_positive: 'FP', wrong_class: 'class', boundaries: 'bounds'};
    const parts = Object.keys(short).filter((k) => r.errors[k] > 0)
      .map((k) => r.errors[k] + ' ' + short[k]);
    return parts.length ? parts.join(', ') : 'none';
  }

  function errorCount(r) {
    return r.errors.missed + r.errors.false_positive + r.errors.wrong_class + r.errors.boundaries;
  }

  function compare(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;
    if (b === null || b === undefined) return -1;
    return a < b ? -1 : 1;
  }

  function rowHtml(cols, n) {
    const r = INDEX.videos[n];
    const sel = view && view.n === n ? ' class="selected"' : '';
    return '<tr data-n="' + n + '"' + sel + '>' + cols.map((c) => {
      const v = cellValue(c, r);
      const text = c.show ? c.show(r) : (v === null || v === undefined ? '' : v);
      let cls = c.num ? 'num' : '';
      if (c.key === 'id' || c.key === 'gt') cls = c.key;
      if (c.error) cls += v > 0 ? ' bad' : ' zero';
      return '<td class="' + cls + '" title="' + esc(text) + '">' + esc(text) + '</td>';
    }).join('') + '</tr>';
  }

  function buildAp(ix) {
    if (!ix.ap) return;
    $('ap-box').hidden = false;
    const first = ix.ap.tiou[0];
    $('ap').querySelector('thead').innerHTML = '<tr><th>class</th><th class="num">instances</th>'
      + '<th class="num">AP@' + first + '</th><th class="num">average AP</th></tr>';
    const rows = ix.ap.classes.map((c) => ({label: c.label, instances: c.instances, first: c.ap[0],
      avg: c.ap.reduce((a, b) => a + b, 0) / c.ap.length}));
    rows.sort((a, b) => a.avg - b.avg);
    $('ap').querySelector('tbody').innerHTML = rows.map((c) => '<tr data-label="' + esc(c.label)
      + '"><td>' + esc(c.label) + '</td><td class="num">' + c.instances + '</td><td class="num">'
      + fmt(100 * c.first, 1) + '</td><td class="num">' + fmt(100 * c.avg, 1) + '</td></tr>').join('');
    $('ap').querySelector('tbody').addEventListener('click', (e) => {
      const tr = e.target.closest('tr');
      if (!tr) return;
      $('f-class').value = tr.dataset.label;
      applyFilters();
    });
  }

  // ---- one video ------------------------------------------------------------------------
  window.avlocVideo = function (n, doc) {
    loaded[n] = doc;
    if (waiting[n]) {
      waiting[n](doc);
      delete waiting[n];
    }
  };

  function load(n) {
    if (loaded[n]) return Promise.resolve(loaded[n]);
    return new Promise((resolve, reject) => {
      waiting[n] = resolve;
      const s = document.createElement('script');
      s.src = INDEX.videos[n].file;
      s.onload = () => s.remove();
      s.onerror = () => reject(new Error('cannot load ' + s.src));
      document.head.appendChild(s);
    });
  }

  function openFromHash() {
    const m = /^#video=(.*)$/.exec(location.hash);
    if (!m) return;
    const id = decodeURIComponent(m[1]);
    const n = INDEX.videos.findIndex((r) => r.id === id);
    if (n >= 0) open(n);
  }

  async function open(n) {
    const row = INDEX.videos[n];
    for (const tr of $('videos').querySelectorAll('tr.selected')) tr.classList.remove('selected');
    const tr = $('videos').querySelector('tr[data-n="' + n + '"]');
    if (tr) tr.classList.add('selected');
    $('d-title').textContent = row.id;
    const doc = await load(n);
    view = {n, doc, row};
    if (doc.heat) {
      const all = bytes(doc.heat);
      view.heat = doc.heat_classes.map((_, k) => all.subarray(k * doc.snippets, (k + 1) * doc.snippets));
      view.mu = bytes(doc.mu);
    }
    $('d-info').textContent = infoText(doc, row);
    setPlayer(row);
    draw(doc);
    segmentTable(doc);
    $('readout').innerHTML = '&nbsp;';
    document.body.dataset.openVideo = row.id;  // for tests and scripts: what is drawn
    performance.mark('avloc-open-' + row.id);
  }

  function infoText(doc, row) {
    const parts = [clock(doc.duration)];
    if (doc.snippets) parts.push(doc.snippets + ' snippets of ' + doc.seconds + ' s');
    parts.push(doc.pred.length + ' predicted segments');
    if (INDEX.has_truth) parts.push(doc.gt.length + ' ground-truth instances');
    if (!row.video) parts.push('no video file (avloc view OUT --videos DIR shows it)');
    return parts.join(' · ');
  }

  function player() {
    return $('player');
  }

  function setPlayer(row) {
    const v = player();
    if (!row.video) {
      v.hidden = true;
      v.removeAttribute('src');
      v.load();
      return;
    }
    if (v.getAttribute('src') !== row.video) {
      v.src = row.video;
    }
    v.hidden = false;
    if (!v.dataset.bound) {
      v.dataset.bound = '1';
      v.addEventListener('timeupdate', () => playhead(v.currentTime));
      v.addEventListener('seeked', () => playhead(v.currentTime));
      v.addEventListener('play', () => {
        const tick = () => {
          playhead(v.currentTime);
          if (!v.paused && !v.ended) requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
      });
    }
  }

  function seek(t) {
    const v = player();
    if (!v.hidden && v.getAttribute('src')) v.currentTime = t;
    playhead(t);
    showReadout(t);
  }

  // ---- the chart ------------------------------------------------------------------------
  function tracksOf(doc) {
    const tracks = [];
    if (INDEX.has_truth) {
      const lanes = [...new Set(doc.gt.map((g) => g[2]))];
      tracks.push({key: 'gt', title: 'ground truth', lanes: lanes.length ? lanes : ['(none)']});
    }
    tracks.push({key: 'pred', title: 'predicted (score)',
                 lanes: doc.lanes.length ? doc.lanes : ['(none)']});
    if (doc.heat) {
      tracks.push({key: 'heat', title: 'class activation', lanes: doc.heat_classes});
      tracks.push({key: 'mu', title: 'μ (foreground reliability)', height: 56});
    }
    let y = 4;
    for (const t of tracks) {
      t.top = y + 18;
      t.height = t.height || LANE_H * t.lanes.length;
      y = t.top + t.height + 8;
    }
    return {tracks, height: y + 58, last: tracks.length - 1};
  }

  function heatCanvas(values) {
    // one row of the heat map, a pixel (or a few) per snippet: drawn once, stretched by ECharts
    const T = values.length;
    const f = Math.max(1, Math.min(Math.ceil(1600 / T), 64));
    const c = document.createElement('canvas');
    c.width = Math.min(T * f, 16384);
    c.height = 1;
    const ctx = c.getContext('2d');
    const img = ctx.createImageData(c.width, 1);
    for (let x = 0; x < c.width; x++) {
      const rgb = heatColor(values[Math.min(T - 1, Math.floor(x * T / c.width))] / 255);
      img.data.set([rgb[0], rgb[1], rgb[2], 255], 4 * x);
    }
    ctx.putImageData(img, 0, 0);
    return c;
  }

  function heatColor(v) {
    const p = Math.max(0, Math.min(1, v)) * (HEAT_STOPS.length - 1);
    const i = Math.min(Math.floor(p), HEAT_STOPS.length - 2);
    const f = p - i;
    return HEAT_STOPS[i].map((a, k) => Math.round(a + f * (HEAT_STOPS[i + 1][k] - a)));
  }

  function segmentItem(params, api) {
    const lane = api.value(2);
    const a = api.coord([api.value(0), lane]);
    const b = api.coord([api.value(1), lane]);
    const h = api.size([0, 1])[1] * 0.72;
    const width = Math.max(b[0] - a[0], 2);
    const style = api.style();
    const item = {type: 'rect', shape: {x: a[0], y: a[1] - h / 2, width, height: h, r: 2}, style};
    const label = params.seriesId === 'pred' ? fmt(api.value(3), 2) : '';
    if (label && width > 34) {
      return {type: 'group', children: [item, {type: 'text', silent: true,
        style: {text: label, x: a[0] + width / 2, y: a[1], align: 'center', verticalAlign: 'middle',
                fill: '#fff', font: '10px sans-serif'}}]};
    }
    return item;
  }

  function heatItem(images) {
    return (params, api) => {
      const k = api.value(2);
      const a = api.coord([api.value(0), k]);
      const b = api.coord([api.value(1), k]);
      const h = api.size([0, 1])[1];
      return {type: 'image', silent: true,
              style: {image: images[k], x: a[0], y: a[1] - h / 2 + 1, width: b[0] - a[0],
                      height: h - 2}};
    };
  }

  function timeRange(doc) {
    const x0 = Math.min(0, doc.offset || 0);
    const x1 = Math.max(doc.duration, doc.snippets ? doc.offset + doc.snippets * doc.seconds : 0);
    return [x0, x1];
  }

  function draw(doc) {
    const L = tracksOf(doc);
    view.layout = L;
    const el = $('chart');
    el.style.height = L.height + 'px';
    if (!chart) {
      chart = echarts.init(el);
      chart.getZr().on('click', onClick);
      chart.getZr().on('mousemove', (e) => {
        const t = timeAt(e.offsetX, e.offsetY);
        if (t !== null) showReadout(t);
      });
      chart.on('datazoom', () => playhead(view.playhead));
    }
    const [x0, x1] = timeRange(doc);
    const grids = [];
    const xAxes = [];
    const yAxes = [];
    const series = [];
    const titles = [];
    L.tracks.forEach((t, i) => {
      grids.push({left: LEFT, right: 24, top: t.top, height: t.height});
      xAxes.push({type: 'value', gridIndex: i, min: x0, max: x1,
                  axisLabel: {show: i === L.last, formatter: clock},
                  axisTick: {show: i === L.last}, axisLine: {show: i === L.last},
                  splitLine: {show: true, lineStyle: {color: '#eee'}},
                  axisPointer: {show: true, snap: false, triggerTooltip: false,
                                label: {show: i === L.last, formatter: (p) => clock(p.value)}}});
      if (t.key === 'mu') {
        yAxes.push({type: 'value', gridIndex: i, min: 0, max: 1, interval: 0.5,
                    axisLabel: {fontSize: 10}, splitLine: {lineStyle: {color: '#eee'}}});
      } else {
        yAxes.push({type: 'category', gridIndex: i, data: t.lanes, inverse: true,
                    axisTick: {show: false},
                    axisLabel: {width: LEFT - 12, overflow: 'truncate', fontSize: 11}});
      }
      titles.push({type: 'text', left: 8, top: t.top - 16,
                   style: {text: t.title, font: 'bold 12px sans-serif', fill: '#333'}});
      series.push(seriesOf(t, i, doc, x0, x1));
    });
    titles.push({id: 'playhead', type: 'line', silent: true, z: 100, invisible: true,
                 shape: {x1: 0, y1: 0, x2: 0, y2: 0}, style: {stroke: '#d62728', lineWidth: 2}});
    const all = L.tracks.map((_, i) => i);
    chart.setOption({
      animation: false,
      grid: grids, xAxis: xAxes, yAxis: yAxes, series, graphic: titles,
      axisPointer: {link: [{xAxisIndex: 'all'}]},
      tooltip: {trigger: 'item', confine: true, formatter: tooltip},
      dataZoom: [
        {type: 'inside', xAxisIndex: all, filterMode: 'none', zoomOnMouseWheel: 'shift',
         moveOnMouseWheel: false},
        {type: 'slider', xAxisIndex: all, filterMode: 'none', bottom: 6, height: 16,
         labelFormatter: (v) => clock(v)},
      ],
    }, true);
    chart.resize();  // the container's height follows the number of lanes
    view.playhead = null;
    playhead(player().hidden ? null : player().currentTime);
  }

  function seriesOf(t, i, doc, x0, x1) {
    const base = {id: t.key, xAxisIndex: i, yAxisIndex: i, clip: true};
    if (t.key === 'gt') {
      const lane = (label) => t.lanes.indexOf(label);
      return {...base, type: 'custom', renderItem: segmentItem, encode: {x: [0, 1], y: 2},
        data: doc.gt.map((g, k) => ({value: [g[0], g[1], lane(g[2]), 0, k],
          itemStyle: {color: g[3] ? MISSED_COLOR : GT_COLOR, opacity: 0.85}}))};
    }
    if (t.key === 'pred') {
      const top = doc.pred.length ? Math.max(...doc.pred.map((p) => p[3])) : 1;
      const lane = (label) => {
        const k = t.lanes.indexOf(label);
        return k >= 0 ? k : t.lanes.length - 1;  // beyond the shown lanes: '(other classes)'
      };
      return {...base, type: 'custom', renderItem: segmentItem, encode: {x: [0, 1], y: 2},
        data: doc.pred.map((p, k) => ({value: [p[0], p[1], lane(p[2]), p[3], k],
          itemStyle: {color: INDEX.has_truth ? KIND_COLORS[p[4]] : PRED_COLOR,
                      opacity: 0.3 + 0.7 * Math.max(0, p[3]) / (top || 1)}}))};
    }
    if (t.key === 'heat') {
      return {...base, type: 'custom', renderItem: heatItem(view.heat.map(heatCanvas)),
        encode: {x: [0, 1], y: 2},
        tooltip: {show: false},
        data: doc.heat_classes.map((_, k) => [doc.offset, doc.offset + doc.snippets * doc.seconds, k])};
    }
    const mu = Array.from(view.mu, (q, s) => [doc.offset + (s + 0.5) * doc.seconds, q / 255]);
    return {...base, type: 'line', data: mu, step: doc.snippets <= 200 ? 'middle' : false,
            showSymbol: doc.snippets <= 30, symbolSize: 4, sampling: 'lttb', silent: true,
            lineStyle: {width: 1.2, color: '#444'}, itemStyle: {color: '#444'}, areaStyle: {color: 'rgba(68,68,68,0.12)'},
            tooltip: {show: false}};
  }

  function tooltip(p) {
    const doc = view.doc;
    if (p.seriesId === 'gt') {
      const g = doc.gt[p.value[4]];
      return '<b>' + esc(g[2]) + '</b> (ground truth)<br>' + clock(g[0]) + ' – ' + clock(g[1])
        + (g[3] ? '<br><span style="color:' + MISSED_COLOR + '">missed</span>' : '');
    }
    if (p.seriesId === 'pred') {
      const s = doc.pred[p.value[4]];
      const kind = INDEX.has_truth ? '<br>' + KIND_NAMES[s[4]] : '';
      return '<b>' + esc(s[2]) + '</b> score ' + fmt(s[3], 3) + '<br>' + clock(s[0]) + ' – '
        + clock(s[1]) + kind;
    }
    return '';
  }

  function onClick(e) {
    // one handler for the whole chart: a segment under the pointer seeks to its start,
    // anywhere else on a track seeks to the time clicked
    const t = timeAt(e.offsetX, e.offsetY);
    if (t === null) return;
    const hit = segmentAt(e.offsetX, e.offsetY, t);
    if (hit) {
      markRow(hit.track, hit.k);
      seek(hit.segment[0]);
    } else {
      seek(t);
    }
  }

  function segmentAt(x, y, t) {
    const L = view.layout;
    for (const [i, track] of L.tracks.entries()) {
      if (!(track.key === 'gt' || track.key === 'pred')) continue;
      if (!chart.containPixel({gridIndex: i}, [x, y])) continue;
      const lane = Math.round(chart.convertFromPixel({yAxisIndex: i}, y));
      const slack = Math.abs(chart.convertFromPixel({xAxisIndex: i}, x + 2) - t);  // 2 px
      const rows = track.key === 'gt' ? view.doc.gt : view.doc.pred;
      const data = chart.getOption().series[i].data;
      for (let k = rows.length - 1; k >= 0; k--) {  // the one drawn last is on top
        const v = data[k].value;
        if (v[2] === lane && v[0] - slack <= t && t <= v[1] + slack) {
          return {track: track.key, k, segment: rows[k]};
        }
      }
    }
    return null;
  }

  function timeAt(x, y) {
    if (!view || !view.layout) return null;
    const inside = view.layout.tracks.some((t, i) => chart.containPixel({gridIndex: i}, [x, y]));
    return inside ? chart.convertFromPixel({xAxisIndex: view.layout.last}, x) : null;
  }

  function playhead(t) {
    if (!chart || !view || !view.layout) return;
    view.playhead = t;
    const L = view.layout;
    const top = L.tracks[0].top;
    const bottom = L.tracks[L.last].top + L.tracks[L.last].height;
    const x = t === null || t === undefined ? null : chart.convertToPixel({xAxisIndex: L.last}, t);
    const inside = x !== null && chart.containPixel({gridIndex: L.last}, [x, bottom - 1]);
    chart.setOption({graphic: [{id: 'playhead', invisible: !inside,
                                shape: {x1: x || 0, y1: top, x2: x || 0, y2: bottom}}]});
  }

  function showReadout(t) {
    const doc = view.doc;
    const parts = ['t = ' + clock(t)];
    if (doc.heat) {
      const s = Math.floor((t - doc.offset) / doc.seconds);
      if (s >= 0 && s < doc.snippets) {
        parts.push('snippet ' + s + ' (' + clock(doc.offset + s * doc.seconds) + ' – '
                   + clock(doc.offset + (s + 1) * doc.seconds) + ')');
        parts.push('μ ' + fmt(view.mu[s] / 255, 2));
        const [low, high] = doc.heat_range;
        const acts = doc.heat_classes.map((c, k) => [c, low + view.heat[k][s] / 255 * (high - low)]);
        acts.sort((a, b) => b[1] - a[1]);
        parts.push(acts.slice(0, 3).map((a) => esc(a[0]) + ' ' + fmt(a[1], 2)).join(', '));
      }
    }
    const at = doc.pred.filter((p) => p[0] <= t && t < p[1]);
    if (at.length) parts.push('predicted: ' + at.map((p) => esc(p[2]) + ' ' + fmt(p[3], 2)).join(', '));
    $('readout').innerHTML = parts.join(' · ');
  }

  // ---- the segment list under the chart -----------------------------------------------------
  function segmentTable(doc) {
    const judged = INDEX.has_truth;
    $('segments').querySelector('thead').innerHTML = '<tr><th>track</th><th>class</th>'
      + '<th class="num">start</th><th class="num">end</th><th class="num">score</th>'
      + (judged ? '<th>outcome</th>' : '') + '</tr>';
    const rows = doc.gt.map((g, k) => ['gt', k, 'truth', g[2], g[0], g[1], null, g[3] ? 'missed' : 'found'])
      .concat(doc.pred.map((p, k) => ['pred', k, 'predicted', p[2], p[0], p[1], p[3], KIND_NAMES[p[4]]]));
    $('segments').querySelector('tbody').innerHTML = rows.map((r) => '<tr data-track="' + r[0]
      + '" data-k="' + r[1] + '" data-start="' + r[4] + '"><td>' + r[2] + '</td><td>' + esc(r[3])
      + '</td><td class="num">' + clock(r[4]) + '</td><td class="num">' + clock(r[5])
      + '</td><td class="num">' + fmt(r[6], 3) + '</td>' + (judged ? '<td>' + esc(r[7]) + '</td>' : '')
      + '</tr>').join('');
    const body = $('segments').querySelector('tbody');
    body.onclick = (e) => {
      const tr = e.target.closest('tr');
      if (!tr) return;
      markRow(tr.dataset.track, +tr.dataset.k);
      seek(+tr.dataset.start);
    };
    $('legend').innerHTML = legendHtml(judged, doc.heat_range);
  }

  function markRow(track, k) {
    for (const tr of $('segments').querySelectorAll('tr.active')) tr.classList.remove('active');
    const tr = $('segments').querySelector('tr[data-track="' + track + '"][data-k="' + k + '"]');
    if (tr) tr.classList.add('active');
  }

  function legendHtml(judged, range) {
    const sw = (c, t) => '<span class="sw" style="background:' + c + '"></span>' + esc(t);
    const items = judged ? [sw(GT_COLOR, 'instance found'), sw(MISSED_COLOR, 'instance missed')]
      .concat(['tp', 'boundaries', 'wrong_class', 'false_positive', '']
        .map((k) => sw(KIND_COLORS[k], KIND_NAMES[k])))
      : [sw(PRED_COLOR, 'predicted segment')];
    const ramp = 'linear-gradient(90deg,' + HEAT_STOPS.map((c) => 'rgb(' + c + ')').join(',') + ')';
    const heat = range ? ' · activation ' + fmt(range[0], 2) + ' <span class="ramp" style="'
      + 'background:' + ramp + '"></span> ' + fmt(range[1], 2) : '';
    return items.join('') + ' · darker = higher score' + heat + ' · click a segment or the timeline to seek'
      + ' · shift+wheel or the slider zooms';
  }
})();
