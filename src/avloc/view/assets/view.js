/* avloc view: the page of `avloc view OUT` (written by avloc/view/build.py).
 *
 * index.js calls avlocIndex(index) with one row per video, the task's outcomes (name,
 * colour and rule of each) and its numbers; a video's tracks come from data/NNNNNN.js,
 * loaded by a <script> tag when the video is opened (browsers refuse fetch() from disk),
 * which calls avlocVideo(n, doc). The tracks are chosen per task in Python
 * (avloc/view/tracks.py); here each kind is drawn one way: "truth" and "pred" segments,
 * "heat" rows of activations, a "line" (mu). Charts are Apache ECharts: one instance, one
 * grid per track on linked time axes; segments and activation rows are custom series.
 */
'use strict';
(function () {
  const PRED_COLOR = '#2b6cb0';
  const HEAT_STOPS = [[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];
  const LANE_H = 20;   // pixels per lane of a track
  const LEFT = 150;    // room for lane labels
  const LEVELS = [['segment_level', 'segment'], ['event_level', 'event']];
  const FSCORES = [['audio', 'audio'], ['visual', 'visual'], ['audio_visual', 'AV'],
                   ['type_av', 'Type@AV'], ['event_av', 'Event@AV']];
  const SCORE_NOTES = {
    action: 'score = peak activation in the segment + score weight × the class\'s video-level '
      + 'score (W-TALC\'s ranking), so it can pass 1',
    event: 'score = the class\'s mean probability over the segment\'s snippets (each snippet '
      + 'takes the argmax class)',
    parsing: 'score = the modality\'s mean probability over the event',
  };

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
    $('title').textContent = index.title;
    document.title = index.title + ' · avloc view';
    $('summary').innerHTML = summaryHtml(index);
    fillFilters(index);
    buildHead();
    buildAp(index);
    applyFilters();
    window.addEventListener('hashchange', openFromHash);
    window.addEventListener('resize', () => chart && chart.resize());
    performance.mark('avloc-index');  // benchmarks/bench_view.py reads it
    if (!location.hash && index.videos.length === 1) {
      location.hash = 'video=' + encodeURIComponent(index.videos[0].id);  // nothing to choose
    }
    openFromHash();
  };

  const plural = (n, one, many) => n + ' ' + (n === 1 ? one : (many || one + 's'));
  const pct = (x) => fmt(100 * x, 1);
  const outcome = (k) => INDEX.outcomes[k] || {name: k, color: '#7f8c8d', rule: ''};

  function fscoreTable(scores, caption) {
    // the LLP F-scores at both levels, as the official code prints them
    const head = '<tr><th></th>' + FSCORES.map((f) => '<th class="num">' + f[1] + '</th>').join('')
      + '</tr>';
    const rows = LEVELS.map(([key, name]) => '<tr><td>' + name + '-level</td>' + FSCORES.map((f) =>
      '<td class="num">' + pct(scores[key][f[0]]) + '</td>').join('') + '</tr>').join('');
    return '<div class="fscores"><div class="caption">' + esc(caption) + '</div>'
      + '<table class="fscores">' + head + rows + '</table></div>';
  }

  function thresholdText(t) {
    if (!t) return '';
    return 'events decided at video ' + fmt(t.video, 2) + ', audio ' + fmt(t.audio, 2) + ', visual '
      + fmt(t.visual, 2) + ' (' + t.source + ')';
  }

  function summaryHtml(ix) {
    const parts = [plural(ix.videos.length, 'video')];
    if (ix.task) parts.push(ix.task + ' model');
    let extra = '';
    if (ix.task === 'parsing') {
      if (ix.thresholds) parts.push(thresholdText(ix.thresholds));
      if (ix.summary) {
        extra = fscoreTable(ix.summary, 'LLP F-scores (%) over these videos, as the official '
                            + 'code computes them from these events');
      } else if (!ix.has_truth) {
        parts.push('no ground truth (avloc view OUT --gt GT.json adds it)');
      }
      if (ix.has_truth) parts.push('each event judged as the LLP event level judges it');
      return esc(parts.join(' · ')) + extra;
    }
    if (ix.task === 'event' && ix.summary) {
      parts.push('snippet accuracy ' + pct(ix.summary.accuracy) + ' % over '
                 + plural(ix.summary.snippets, 'snippet') + ' (the AVE protocol)');
    }
    if (ix.ap) {
      const first = ix.ap.tiou[0];
      parts.push('mAP@' + first + ' ' + pct(ix.ap.mAP[first]) + ' %');
      parts.push('average mAP (' + ix.ap.tiou[0] + ':' + ix.ap.tiou[ix.ap.tiou.length - 1] + ') '
                 + pct(ix.ap.average_mAP) + ' %');
      parts.push(plural(ix.ap.instances, 'ground-truth instance'));
      parts.push('outcomes at tIoU ' + ix.diagnose_tiou + ', each video\'s G best detections'
                 + ' judged (G = its instances)');
    } else if (!ix.has_truth) {
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
      const opts = errorKinds().map((k) => '<option value="' + k + '">' + outcome(k).name
        + '</option>');
      opts.push('<option value="none">no error</option>');
      $('f-error').insertAdjacentHTML('beforeend', opts.join(''));
    } else {
      $('f-error').hidden = true;
    }
    for (const id of ['f-text', 'f-class', 'f-error', 'f-score']) {
      $(id).addEventListener('input', applyFilters);
    }
  }

  function errorKinds() {
    // the outcomes that are errors, in the order the errors column names them
    return ['missed', 'false_positive', 'wrong_class', 'boundaries'].filter((k) => k in INDEX.outcomes);
  }

  function columns() {
    const cols = [
      {key: 'id', title: 'video'},
      {key: 'duration', title: 'length', num: true, show: (r) => clock(r.duration)},
      {key: 'top', title: 'top class'},
      {key: 'score', title: 'score', num: true, show: (r) => fmt(r.score, 2),
       tip: SCORE_NOTES[INDEX.task] || 'score'},
      {key: 'segments', title: INDEX.task === 'parsing' ? 'events' : 'segs', num: true,
       tip: INDEX.task === 'parsing' ? 'predicted audio and visual events' : 'predicted segments'},
    ];
    if (INDEX.has_truth) {
      cols.push({key: 'gt', title: 'truth', value: (r) => r.gt_classes.join(', ')});
      if (INDEX.task === 'parsing') {
        cols.push({key: 'seg_tav', title: 'T@AV', num: true,
                   tip: 'this video\'s segment-level Type@AV F-score (%)',
                   value: (r) => r.scores['segment_level.type_av'],
                   show: (r) => pctOrEmpty(r.scores['segment_level.type_av'])});
      }
      if (INDEX.task === 'event') {
        cols.push({key: 'acc', title: 'acc.', num: true, tip: 'snippet accuracy (%)',
                   value: (r) => r.scores.accuracy, show: (r) => pctOrEmpty(r.scores.accuracy)});
      }
      cols.push({key: 'errors', title: 'errors', tip: errorKinds().map((k) => outcome(k).name
                 + ': ' + outcome(k).rule).join('\n'),
                 num: true, error: true, value: errorCount, show: errorText, cellTip: errorTip});
    }
    return cols;
  }

  function pctOrEmpty(x) {
    return x === undefined || x === null ? '' : pct(x);
  }

  // shares of the index's width (the table has a fixed layout, so it never outgrows its
  // panel: a long cell is cut with an ellipsis and shows whole on hover)
  const WIDTHS = {id: 17, duration: 10, top: 13, score: 8, segments: 10, gt: 13, seg_tav: 10,
                  acc: 10, errors: 18};

  function buildHead() {
    $('videos').querySelector('thead').innerHTML = '<tr>' + columns().map((c) =>
      '<th data-key="' + c.key + '"' + (c.num ? ' class="num"' : '') + ' style="width:'
      + WIDTHS[c.key] + '%" title="' + esc(c.tip || c.title) + '">' + esc(c.title) + '</th>')
      .join('') + '</tr>';
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
    $('count').textContent = shown.length + ' of ' + plural(INDEX.videos.length, 'video');
  }

  function errorText(r) {
    const short = {missed: 'miss', false_positive: 'FP', wrong_class: 'class', boundaries: 'bounds'};
    const text = (errors) => errorKinds().filter((k) => errors[k] > 0)
      .map((k) => errors[k] + ' ' + short[k]).join(', ');
    return text(r.errors) || 'none';
  }

  function errorTip(r) {
    // parsing: the errors of each modality (the cell gives their sum)
    if (!r.by_modality) return errorText(r);
    return Object.entries(r.by_modality).map(([m, e]) => m + ': ' + (errorKinds()
      .filter((k) => e[k] > 0).map((k) => e[k] + ' ' + outcome(k).name).join(', ') || 'none'))
      .join('\n');
  }

  function errorCount(r) {
    return errorKinds().reduce((n, k) => n + (r.errors[k] || 0), 0);
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
      if (c.error) cls += (v > 0 ? ' bad' : ' zero') + ' errors';
      const tip = c.cellTip ? c.cellTip(r) : text;
      return '<td class="' + cls + '" title="' + esc(tip) + '">' + esc(text) + '</td>';
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
    view = {n, doc, row, rows: {}, line: null};
    for (const t of doc.tracks) {  // decode the activation rows and mu once per video
      if (t.kind === 'heat') {
        const all = bytes(t.data);
        view.rows[t.key] = t.lanes.map((_, k) => all.subarray(k * doc.snippets, (k + 1) * doc.snippets));
      } else if (t.kind === 'line') {
        view.line = bytes(t.data);
      }
    }
    $('d-info').innerHTML = infoHtml(doc, row);
    setPlayer(row);
    draw(doc);
    segmentTable(doc);
    $('readout').innerHTML = '&nbsp;';
    document.body.dataset.openVideo = row.id;  // for tests and scripts: what is drawn
    performance.mark('avloc-open-' + row.id);
  }

  function segmentTracks(doc) {
    return doc.tracks.filter((t) => t.kind === 'truth' || t.kind === 'pred');
  }

  function infoHtml(doc, row) {
    const parts = [clock(doc.duration)];
    if (doc.snippets) parts.push(plural(doc.snippets, 'snippet') + ' of ' + doc.seconds + ' s');
    const count = (kind) => segmentTracks(doc).filter((t) => t.kind === kind)
      .reduce((n, t) => n + t.items.length, 0);
    const parsing = INDEX.task === 'parsing';
    parts.push(plural(count('pred'), parsing ? 'predicted event' : 'predicted segment'));
    if (INDEX.has_truth) {
      parts.push(plural(count('truth'), parsing ? 'true event' : 'ground-truth instance'));
    }
    if (doc.scores && doc.scores.accuracy !== undefined) {
      parts.push('snippet accuracy ' + pct(doc.scores.accuracy) + ' %');
    }
    if (!row.video) parts.push('no video file (avloc view OUT --videos DIR shows it)');
    let html = esc(parts.join(' · '));
    if (parsing && doc.scores && doc.scores['segment_level.type_av'] !== undefined) {
      const scores = {};
      for (const [level] of LEVELS) {
        scores[level] = {};
        for (const [k] of FSCORES) scores[level][k] = doc.scores[level + '.' + k];
      }
      html += fscoreTable(scores, 'this video\'s LLP F-scores (%)');
    }
    return html;
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
    const tracks = doc.tracks.filter((t) => INDEX.has_truth || t.kind !== 'truth').map((t) => ({
      ...t, lanes: t.kind === 'line' ? [] : (t.lanes.length ? t.lanes : ['(none)']),
    }));
    let y = 4;
    for (const t of tracks) {
      t.top = y + 18;
      t.height = t.kind === 'line' ? 56 : LANE_H * t.lanes.length;
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
      if (t.kind === 'line') {
        yAxes.push({type: 'value', gridIndex: i, min: 0, max: 1, interval: 0.5,
                    axisLabel: {fontSize: 10}, splitLine: {lineStyle: {color: '#eee'}}});
      } else {
        yAxes.push({type: 'category', gridIndex: i, data: t.lanes, inverse: true,
                    axisTick: {show: false},
                    axisLabel: {width: LEFT - 12, overflow: 'truncate', fontSize: 11}});
      }
      titles.push({type: 'text', left: 8, top: t.top - 16,
                   style: {text: t.title, font: 'bold 12px sans-serif', fill: '#333'}});
      series.push(seriesOf(t, i, doc));
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

  function seriesOf(t, i, doc) {
    const base = {id: t.key, xAxisIndex: i, yAxisIndex: i, clip: true};
    const lane = (label) => {
      const k = t.lanes.indexOf(label);
      return k >= 0 ? k : t.lanes.length - 1;  // beyond the shown lanes: '(other classes)'
    };
    if (t.kind === 'truth') {
      return {...base, type: 'custom', renderItem: segmentItem, encode: {x: [0, 1], y: 2},
        data: t.items.map((g, k) => ({value: [g[0], g[1], lane(g[2]), 0, k],
          itemStyle: {color: outcome(g[3]).color, opacity: 0.85}}))};
    }
    if (t.kind === 'pred') {
      const top = t.items.length ? Math.max(...t.items.map((p) => p[3])) : 1;
      return {...base, type: 'custom', renderItem: segmentItem, encode: {x: [0, 1], y: 2},
        data: t.items.map((p, k) => ({value: [p[0], p[1], lane(p[2]), p[3], k],
          itemStyle: {color: INDEX.has_truth ? outcome(p[4]).color : PRED_COLOR,
                      opacity: 0.3 + 0.7 * Math.max(0, p[3]) / (top || 1)}}))};
    }
    if (t.kind === 'heat') {
      return {...base, type: 'custom', renderItem: heatItem(view.rows[t.key].map(heatCanvas)),
        encode: {x: [0, 1], y: 2},
        tooltip: {show: false},
        data: t.lanes.map((_, k) => [doc.offset, doc.offset + doc.snippets * doc.seconds, k])};
    }
    const mu = Array.from(view.line, (q, s) => [doc.offset + (s + 0.5) * doc.seconds, q / 255]);
    return {...base, type: 'line', data: mu, step: doc.snippets <= 200 ? 'middle' : false,
            showSymbol: doc.snippets <= 30, symbolSize: 4, sampling: 'lttb', silent: true,
            lineStyle: {width: 1.2, color: '#444'}, itemStyle: {color: '#444'}, areaStyle: {color: 'rgba(68,68,68,0.12)'},
            tooltip: {show: false}};
  }

  function trackOf(key) {
    return view.layout.tracks.find((t) => t.key === key);
  }

  function tooltip(p) {
    const t = trackOf(p.seriesId);
    if (!t) return '';
    const item = t.items[p.value[4]];
    const [start, end, label] = item;
    const judged = t.kind === 'truth' ? item[3] : item[4];
    let html = '<b>' + esc(label) + '</b> (' + esc(t.title.replace(' (score)', '')) + ')';
    if (t.kind === 'pred') html += ' score ' + fmt(item[3], 3);
    html += '<br>' + clock(start) + ' – ' + clock(end);
    if (INDEX.has_truth) {
      const o = outcome(judged);
      html += '<br><span style="color:' + o.color + '">' + esc(o.name) + '</span>: ' + esc(o.rule);
    }
    return '<div style="max-width:340px;white-space:normal">' + html + '</div>';
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
      if (!(track.kind === 'truth' || track.kind === 'pred')) continue;
      if (!chart.containPixel({gridIndex: i}, [x, y])) continue;
      const lane = Math.round(chart.convertFromPixel({yAxisIndex: i}, y));
      const slack = Math.abs(chart.convertFromPixel({xAxisIndex: i}, x + 2) - t);  // 2 px
      const rows = track.items;
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
    const s = doc.snippets ? Math.floor((t - doc.offset) / doc.seconds) : -1;
    if (s >= 0 && s < doc.snippets) {
      parts.push('snippet ' + s + ' (' + clock(doc.offset + s * doc.seconds) + ' – '
                 + clock(doc.offset + (s + 1) * doc.seconds) + ')');
      if (view.line) parts.push('μ ' + fmt(view.line[s] / 255, 2));
      for (const track of view.layout.tracks.filter((x) => x.kind === 'heat')) {
        const [low, high] = track.range;
        const acts = track.lanes.map((c, k) => [c, low + view.rows[track.key][k][s] / 255 * (high - low)]);
        acts.sort((a, b) => b[1] - a[1]);
        const name = INDEX.task === 'parsing' ? track.key.replace('heat_', '') + ' ' : '';
        parts.push(name + acts.slice(0, 3).map((a) => esc(a[0]) + ' ' + fmt(a[1], 2)).join(', '));
      }
    }
    const at = [];
    for (const track of view.layout.tracks.filter((x) => x.kind === 'pred')) {
      for (const p of track.items) {
        if (p[0] <= t && t < p[1]) at.push(esc(p[2]) + (track.key === 'pred' ? '' : ' (' + track.key.replace('pred_', '') + ')') + ' ' + fmt(p[3], 2));
      }
    }
    if (at.length) parts.push('predicted: ' + at.join(', '));
    $('readout').innerHTML = parts.join(' · ');
  }

  // ---- the segment list under the chart -----------------------------------------------------
  function segmentTable(doc) {
    const judged = INDEX.has_truth;
    $('segments').querySelector('thead').innerHTML = '<tr><th>track</th><th>class</th>'
      + '<th class="num">start</th><th class="num">end</th><th class="num">score</th>'
      + (judged ? '<th>outcome</th>' : '') + '</tr>';
    const rows = [];
    for (const t of view.layout.tracks.filter((x) => x.kind === 'truth' || x.kind === 'pred')) {
      t.items.forEach((it, k) => {
        const key = t.kind === 'truth' ? it[3] : it[4];
        rows.push([t.key, k, t.title.replace(' (score)', ''), it[2], it[0], it[1],
                   t.kind === 'pred' ? it[3] : null, outcome(key)]);
      });
    }
    $('segments').querySelector('tbody').innerHTML = rows.map((r) => '<tr data-track="' + r[0]
      + '" data-k="' + r[1] + '" data-start="' + r[4] + '"><td>' + esc(r[2]) + '</td><td>' + esc(r[3])
      + '</td><td class="num">' + clock(r[4]) + '</td><td class="num">' + clock(r[5])
      + '</td><td class="num">' + fmt(r[6], 3) + '</td>'
      + (judged ? '<td title="' + esc(r[7].rule) + '">' + esc(r[7].name) + '</td>' : '')
      + '</tr>').join('');
    const body = $('segments').querySelector('tbody');
    body.onclick = (e) => {
      const tr = e.target.closest('tr');
      if (!tr) return;
      markRow(tr.dataset.track, +tr.dataset.k);
      seek(+tr.dataset.start);
    };
    const heat = view.layout.tracks.find((x) => x.kind === 'heat');
    $('legend').innerHTML = legendHtml(judged, heat ? heat.range : null);
  }

  function markRow(track, k) {
    for (const tr of $('segments').querySelectorAll('tr.active')) tr.classList.remove('active');
    const tr = $('segments').querySelector('tr[data-track="' + track + '"][data-k="' + k + '"]');
    if (tr) tr.classList.add('active');
  }

  function legendHtml(judged, range) {
    const sw = (o) => '<span class="sw" style="background:' + o.color + '"></span><span title="'
      + esc(o.rule) + '">' + esc(o.name) + '</span>';
    const items = judged ? Object.keys(INDEX.outcomes).map((k) => sw(outcome(k)))
      : [sw({color: PRED_COLOR, name: 'predicted segment', rule: ''})];
    const ramp = 'linear-gradient(90deg,' + HEAT_STOPS.map((c) => 'rgb(' + c + ')').join(',') + ')';
    const heat = range ? ' · activation ' + fmt(range[0], 2) + ' <span class="ramp" style="'
      + 'background:' + ramp + '"></span> ' + fmt(range[1], 2) : '';
    let html = items.join('') + ' · darker = higher score' + heat
      + ' · click a segment or the timeline to seek · shift+wheel or the slider zooms';
    html += '<div class="note">' + esc(SCORE_NOTES[INDEX.task] || '') + '</div>';
    if (judged) {
      html += '<details class="rules"><summary>How outcomes are judged</summary><ul>'
        + Object.keys(INDEX.outcomes).map((k) => '<li><b>' + esc(outcome(k).name) + '</b>: '
        + esc(outcome(k).rule) + '</li>').join('') + '</ul></details>';
    }
    return html;
  }
})();
