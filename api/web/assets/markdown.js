// markdown.js: a model's answer as readable HTML, safely, while it streams.
//
// Everything a model writes is untrusted. The pipeline, and why in this order:
//
//  1. marked turns the Markdown into an HTML string (CommonMark + GitHub
//     tables, task lists, strikethrough). Raw HTML in the answer is escaped,
//     not passed through: a model that writes <b> means the characters.
//     Math ($…$, $$…$$, \(…\), \[…\]) is lifted out before Markdown sees it
//     (so _ and \ inside TeX are not read as emphasis or escapes) and kept
//     as escaped TeX source in <span class="math">: nothing is rendered yet.
//     Code blocks are coloured by highlight.js, whose output is escaped text
//     inside <span class="hljs-…">.
//  2. DOMPurify sanitises that string into a DOM fragment with the HTML
//     profile only (no SVG, no MathML), no style, id or event attributes, no
//     images, forms or frames, and links only to http:, https: and mailto:,
//     each given rel="noopener noreferrer". This is the only place model text
//     becomes markup, and it is checked here.
//  3. Only then KaTeX renders each math span, from the span's text (the TeX
//     source, as text) into that span, with trust off (no \href, \url,
//     \htmlClass…). KaTeX builds its output with DOM calls, not an HTML
//     string, so it never passes an HTML parser; and it sets its positions
//     through element.style (CSSOM), which a CSP with style-src 'self'
//     allows, where the inline style="" attributes of renderToString would
//     be blocked. Sanitising after KaTeX would have to allow style
//     attributes (and SVG) for everyone; this order allows neither.
//
// KaTeX and highlight.js are two thirds of the page's script (KaTeX alone
// 0.6 MB of 1.1 MB), so they are loaded when an answer first needs them: a
// page whose answers hold no math and no code in a named language never
// loads them. Until one has loaded, math shows as its TeX source and code
// uncoloured; once it has, the math and code already in the page are
// rendered (highlight.js's output sanitised as in step 2 before it goes in),
// and later answers are rendered as they come.
//
// Streaming: a column does not re-render its whole answer on every chunk.
// It renders at most once per animation frame, and only its tail: the
// answer is cut into top-level blocks, and a block that is followed by a
// blank line and by more text is finished, rendered once and kept. Only the
// blocks after the last finished one are lexed and rendered again. The
// module's `work` counts what that costs, in characters of Markdown.

import { Marked } from '/vendor/marked/marked.esm.js';
import DOMPurify from '/vendor/dompurify/purify.es.mjs';

const escapeHTML = (s) => String(s).replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

// ---- KaTeX and highlight.js, loaded when first needed ----

/**
 * lazyLibrary is a module loaded the first time need() is called, then
 * handed to loaded(module). A load that fails is tried again by a need()
 * at least RETRY_MS later (not on every render of a streaming answer).
 */
function lazyLibrary(load, loaded) {
  const RETRY_MS = 5000;
  const lib = { module: null, loading: false, failedAt: -Infinity };
  lib.need = () => {
    if (lib.module || lib.loading || performance.now() - lib.failedAt < RETRY_MS) return;
    lib.loading = true;
    load().then((m) => {
      lib.module = m;
      lib.loading = false;
      loaded(m);
    }, (e) => {
      lib.loading = false;
      lib.failedAt = performance.now();
      console.warn('markdown: could not load a renderer; shown as written for now', e);
    });
  };
  return lib;
}

/** stylesheet adds a stylesheet to the page and settles once it has loaded. */
function stylesheet(href) {
  return new Promise((resolve, reject) => {
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = href;
    link.onload = resolve;
    link.onerror = () => { link.remove(); reject(new Error(`${href} did not load`)); };
    document.head.append(link);
  });
}

// KaTeX draws with its stylesheet (positions, fonts): both, before any math.
const katexLib = lazyLibrary(async () => {
  const [m] = await Promise.all([import('/vendor/katex/katex.mjs'), stylesheet('/vendor/katex/katex.min.css')]);
  return m.default;
}, () => renderMath(document));

const hljsLib = lazyLibrary(async () => (await import('/vendor/highlight/highlight.min.js')).default,
  () => highlightPending(document));

// ---- math, lifted out before Markdown reads the text ----

const mathSpan = (tex, display) =>
  `<span class="math ${display ? 'math-display' : 'math-inline'}">${escapeHTML(tex)}</span>`;

const blockMath = {
  name: 'blockMath',
  level: 'block',
  start(src) {
    const m = /^ {0,3}(?:\$\$|\\\[)/m.exec(src);
    return m ? m.index : undefined;
  },
  tokenizer(src) {
    const m = /^ {0,3}\$\$([^]+?)\$\$[ \t]*(?:\n+|$)/.exec(src) || /^ {0,3}\\\[([^]+?)\\\][ \t]*(?:\n+|$)/.exec(src);
    if (m) return { type: 'blockMath', raw: m[0], text: m[1].trim() };
    return undefined;
  },
  renderer(t) { return `<div class="math-block">${mathSpan(t.text, true)}</div>\n`; },
};

const inlineMath = {
  name: 'inlineMath',
  level: 'inline',
  start(src) {
    const m = /\$|\\\(|\\\[/.exec(src);
    return m ? m.index : undefined;
  },
  tokenizer(src) {
    let m = /^\$\$([^]+?)\$\$/.exec(src);
    if (m) return { type: 'inlineMath', raw: m[0], text: m[1].trim(), display: true };
    m = /^\\\[([^]+?)\\\]/.exec(src);
    if (m) return { type: 'inlineMath', raw: m[0], text: m[1].trim(), display: true };
    m = /^\\\(([^]+?)\\\)/.exec(src);
    if (m) return { type: 'inlineMath', raw: m[0], text: m[1].trim(), display: false };
    // $…$ as Pandoc reads it: no space just inside the dollars and no digit
    // just after the closing one, so "$5 and $10" stays prose.
    m = /^\$(?![\s$])((?:\\.|[^\\$\n])+?)(?<![\s\\])\$(?!\d)/.exec(src);
    if (m) return { type: 'inlineMath', raw: m[0], text: m[1], display: false };
    return undefined;
  },
  renderer(t) { return mathSpan(t.text, t.display); },
};

// ---- Markdown ----

const HIGHLIGHT_MAX = 100_000; // characters; longer code is shown uncoloured

const marked = new Marked({
  gfm: true,
  breaks: false,
  extensions: [blockMath, inlineMath],
  renderer: {
    // Raw HTML in an answer is shown as the text it is.
    html({ text }) { return escapeHTML(text); },
    // Images become links: no tracking pixels, nothing loads by itself.
    image({ href, text }) {
      return `<a href="${escapeHTML(href)}">${escapeHTML(text || href)}</a>`;
    },
    // A task list's box as a character: forms stay out of answers.
    checkbox({ checked }) {
      return checked ? '<span class="task task-done" aria-label="done">☑</span> '
        : '<span class="task" aria-label="not done">☐</span> ';
    },
    code({ text, lang }) {
      const language = String(lang || '').trim().split(/\s+/)[0].toLowerCase();
      const hljs = hljsLib.module;
      let body = escapeHTML(text);
      let cls = '';
      if (language && text.length <= HIGHLIGHT_MAX) {
        if (!hljs) { // coloured once highlight.js has loaded (highlightPending)
          hljsLib.need();
          cls = ` class="highlight-pending language-${escapeHTML(language)}"`;
        } else if (hljs.getLanguage(language)) {
          body = hljs.highlight(text, { language, ignoreIllegals: true }).value;
          cls = ` class="hljs language-${escapeHTML(language)}"`;
        }
      }
      const label = language ? `<span class="code-lang">${escapeHTML(language)}</span>` : '';
      return `<div class="code-block">${label}<pre><code${cls}>${body}</code></pre></div>\n`;
    },
  },
});

// ---- sanitising ----

const SAFE_HREF = /^(?:https?:|mailto:)/i;
const PURIFY = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['style', 'img', 'picture', 'source', 'video', 'audio', 'track', 'form', 'input', 'button',
    'select', 'option', 'textarea', 'iframe', 'frame', 'object', 'embed', 'link', 'meta', 'base', 'dialog', 'template'],
  FORBID_ATTR: ['style', 'id', 'name', 'srcset', 'action', 'formaction', 'target', 'ping'],
  ALLOW_DATA_ATTR: false,
  ALLOWED_URI_REGEXP: SAFE_HREF,
  RETURN_DOM_FRAGMENT: true,
};
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.nodeName !== 'A') return;
  const href = node.getAttribute('href');
  if (href === null || !SAFE_HREF.test(href.trim())) {
    node.removeAttribute('href');
    return;
  }
  node.setAttribute('rel', 'noopener noreferrer');
  node.setAttribute('target', '_blank');
});

const KATEX = {
  throwOnError: true, trust: false, strict: 'ignore', output: 'htmlAndMathml',
  maxSize: 20, maxExpand: 500, // ems and macro expansions: no page-sized \rule, no endless macro
};

/**
 * renderMath turns the math spans of a sanitised fragment (or of the page,
 * once KaTeX has loaded) into KaTeX. A span done is marked math-done: its
 * text is KaTeX's now, not TeX.
 */
function renderMath(root) {
  const spans = root.querySelectorAll('span.math:not(.math-done)');
  if (!spans.length) return;
  const katex = katexLib.module;
  if (!katex) {
    katexLib.need(); // the spans show their TeX until then
    return;
  }
  for (const span of spans) {
    const tex = span.textContent;
    span.textContent = '';
    span.classList.add('math-done');
    try {
      katex.render(tex, span, { ...KATEX, displayMode: span.classList.contains('math-display') });
    } catch (e) {
      // TeX that KaTeX cannot read is shown as written, with the reason on
      // hover. (KaTeX's own error rendering sets a style attribute, which
      // the CSP blocks.)
      span.replaceChildren(tex);
      span.classList.add('katex-error');
      span.title = e instanceof Error ? e.message : 'not valid TeX';
    }
  }
}

/**
 * highlightPending colours the code blocks rendered before highlight.js had
 * loaded. Its output goes through DOMPurify, as everything rendered does.
 */
function highlightPending(root) {
  const hljs = hljsLib.module;
  for (const code of root.querySelectorAll('code.highlight-pending')) {
    code.classList.remove('highlight-pending');
    const cls = [...code.classList].find((c) => c.startsWith('language-'));
    const language = cls ? cls.slice('language-'.length) : '';
    if (!language || !hljs.getLanguage(language)) { // a language it does not know: left as it is
      if (cls) code.classList.remove(cls);
      continue;
    }
    const html = hljs.highlight(code.textContent, { language, ignoreIllegals: true }).value;
    code.replaceChildren(DOMPurify.sanitize(html, PURIFY));
    code.classList.add('hljs');
  }
}

/** addCopyButtons gives each code block a copy button (the click is handled by the column). */
function addCopyButtons(root) {
  for (const block of root.querySelectorAll('.code-block')) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'copy-code small';
    b.textContent = 'Copy code';
    block.prepend(b);
  }
}

// Answers nested deeper than this (lists in lists, quotes in quotes) are
// shown as plain text: Markdown's nesting rules cost time that grows faster
// than the text, and no honest answer nests 24 deep.
const MAX_NESTING = 24;
const NESTING = /^(?:[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+|[ \t]*>[ \t]?)+/gm;
const INDENT = /^[ \t]{100,}\S/m;

/** tooDeep reports whether some line of s opens too many lists or quotes. */
export function tooDeep(s) {
  if (INDENT.test(s)) return true;
  NESTING.lastIndex = 0;
  for (let m = NESTING.exec(s); m; m = NESTING.exec(s)) {
    if (m[0].length === 0) { NESTING.lastIndex++; continue; }
    if (m[0].length >= MAX_NESTING * 2) {
      const markers = m[0].match(/[-*+>]|\d{1,9}[.)]/g);
      if (markers && markers.length > MAX_NESTING) return true;
    }
  }
  return false;
}

/**
 * work counts, since the page loaded, the renders of streaming answers and
 * the characters of Markdown lexed and rendered (marked, then DOMPurify,
 * KaTeX and highlight.js on what it made; not the late pass over the page
 * when one of those two loads). An answer rendered as it streams
 * costs about its own length plus, per render, its open blocks; rendering
 * the whole answer again on each chunk would cost its length per render.
 * Read it at the console with (await import('/assets/markdown.js')).work.
 */
export const work = { renders: 0, lexed: 0, rendered: 0 };

function lex(src) {
  work.lexed += src.length;
  return marked.lexer(src);
}

/** renderBlocks renders Markdown tokens into a sanitised fragment. */
function renderBlocks(tokens) {
  for (const t of tokens) work.rendered += t.raw.length;
  const html = marked.parser(tokens);
  const frag = DOMPurify.sanitize(html, PURIFY);
  renderMath(frag);
  addCopyButtons(frag);
  return frag;
}

/** renderMarkdown renders a whole text at once into a sanitised fragment. */
export function renderMarkdown(text) {
  const src = String(text).replace(/\r\n?/g, '\n');
  if (tooDeep(src)) return plainFragment(src);
  return renderBlocks(lex(src));
}

function plainFragment(src) {
  const frag = document.createDocumentFragment();
  const pre = document.createElement('pre');
  pre.className = 'plain';
  pre.textContent = src;
  frag.append(pre);
  return frag;
}

/**
 * warmUp renders a small sample once, when the page is idle, so the first
 * answer does not pay for compiling the renderers (a first render can take
 * over 100 ms, a long task, where later ones take a few). It holds no math
 * and no fenced code: those load KaTeX and highlight.js, which wait for an
 * answer that needs them.
 */
export function warmUp() {
  const run = () => {
    try { renderMarkdown('# a\n\n**b** `c` [d](https://e.example)\n\n| f | g |\n|---|---|\n| 1 | 2 |\n\n- i\n- j\n'); } catch { /* only a warm-up */ }
  };
  if ('requestIdleCallback' in window) requestIdleCallback(run, { timeout: 2000 }); else setTimeout(run, 500);
}

/**
 * MarkdownView shows a text that grows, rendered. set() replaces the text,
 * append() adds to it; either schedules one render in the next animation
 * frame, and flush() renders now. The element holds only what render puts
 * there.
 */
export class MarkdownView {
  constructor(el, onRender = () => {}) {
    this.el = el;
    this.onRender = onRender; // after each render: the column keeps its newest text in view
    this.text = '';
    this.done = 0;          // characters of text already rendered as finished blocks
    this.tail = [];         // nodes of the blocks after the finished ones
    this.plain = false;     // fell back to plain text for this text
    this.frame = 0;         // the animation frame a render waits for
    this.timer = 0;         // the delay before that, after a slow render
    this.cost = 0;          // how long the last render took (ms)
  }

  set(text) {
    this.text = String(text).replace(/\r\n?/g, '\n');
    this.done = 0;
    this.tail = [];
    this.plain = false;
    this.el.replaceChildren();
    this.schedule();
  }

  append(text) {
    if (!text) return;
    this.text += String(text).replace(/\r\n?/g, '\n');
    this.schedule();
  }

  schedule() {
    if (this.frame || this.timer) return;
    // A tail that is slow to render (one huge table, say) is rendered less
    // often: the page spends at most about a fifth of its time on it.
    const wait = this.cost > 10 ? Math.min(2000, this.cost * 4) : 0;
    const go = () => { this.timer = 0; this.frame = requestAnimationFrame(() => { this.frame = 0; this.renderNow(); }); };
    if (wait) this.timer = setTimeout(go, wait); else go();
  }

  flush() {
    this.cancel();
    this.renderNow();
  }

  cancel() {
    if (this.frame) cancelAnimationFrame(this.frame);
    clearTimeout(this.timer);
    this.frame = 0;
    this.timer = 0;
  }

  renderNow() {
    const t0 = performance.now();
    this.render();
    this.cost = performance.now() - t0;
    this.onRender();
  }

  render() {
    work.renders++;
    for (const n of this.tail) n.remove();
    this.tail = [];
    if (!this.plain && tooDeep(this.text.slice(this.done))) {
      this.plain = true;
      this.el.replaceChildren(plainFragment(''));
    }
    if (this.plain) { // the whole answer, as text, from then on
      this.el.firstChild.textContent = this.text;
      return;
    }
    const rest = this.text.slice(this.done);
    let tokens;
    try {
      tokens = lex(rest);
    } catch (e) {
      console.warn('markdown: could not read the answer', e);
      this.plain = true;
      this.el.replaceChildren(plainFragment(this.text));
      return;
    }
    // The blocks up to the last blank line that has more text after it are
    // finished: later text cannot change them.
    let cut = -1;
    for (let i = tokens.length - 2; i >= 0; i--) {
      if (tokens[i].type === 'space') { cut = i; break; }
    }
    const finished = tokens.slice(0, cut + 1);
    const open = tokens.slice(cut + 1);
    const finishedRaw = finished.map((t) => t.raw).join('');
    if (finished.length && rest.startsWith(finishedRaw)) {
      // Finished blocks go into a part of their own, which the browser may
      // skip laying out while it is scrolled out of view (content-visibility).
      const part = document.createElement('div');
      part.className = 'md-part';
      part.append(renderBlocks(finished));
      this.el.append(part);
      this.done += finishedRaw.length;
    } else if (finished.length) {
      open.unshift(...finished); // the tokens do not spell the text: keep it all open
    }
    const frag = renderBlocks(open);
    this.tail = [...frag.childNodes];
    this.el.append(frag);
  }
}
