// A Markdown renderer for the subset that card details use: paragraphs, bulleted and numbered
// lists, **bold**, *italic*, `code` and [links](https://...). It builds DOM nodes and never parses
// HTML, so text from a card (which may echo an order's free text) cannot inject markup.

const INLINE = /(`[^`]+`)|\*\*(.+?)\*\*|\*(?![\s*])([^*]+?)\*|\[([^\]]+)\]\(([^)\s]+)\)/g;
const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
const NUMBERED = /^\s{0,3}\d{1,9}[.)]\s+(.*)$/;

export function renderMarkdown(text, doc = document) {
  const fragment = doc.createDocumentFragment();
  let paragraph = null;
  let list = null;

  const flushParagraph = () => {
    if (paragraph) {
      const p = doc.createElement("p");
      appendInline(p, paragraph.join(" "), doc);
      fragment.append(p);
      paragraph = null;
    }
  };

  for (const raw of String(text ?? "").replace(/\r\n?/g, "\n").split("\n")) {
    const line = raw.trimEnd();
    if (!line.trim()) {
      flushParagraph();
      list = null;
      continue;
    }
    const item = BULLET.exec(line) || NUMBERED.exec(line);
    if (item) {
      flushParagraph();
      const ordered = !BULLET.test(line);
      if (!list || list.ordered !== ordered) {
        list = { node: doc.createElement(ordered ? "ol" : "ul"), ordered, last: null };
        fragment.append(list.node);
      }
      list.last = doc.createElement("li");
      appendInline(list.last, item[1], doc);
      list.node.append(list.last);
    } else if (list && /^\s/.test(raw)) {
      list.last.append(" ");
      appendInline(list.last, line.trim(), doc);
    } else {
      list = null;
      (paragraph ??= []).push(line.trim());
    }
  }
  flushParagraph();
  return fragment;
}

function appendInline(parent, text, doc) {
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > last) parent.append(text.slice(last, match.index));
    const [whole, code, bold, italic, linkText, href] = match;
    if (code) {
      const node = doc.createElement("code");
      node.textContent = code.slice(1, -1);
      parent.append(node);
    } else if (bold !== undefined) {
      const node = doc.createElement("strong");
      appendInline(node, bold, doc);
      parent.append(node);
    } else if (italic !== undefined) {
      const node = doc.createElement("em");
      appendInline(node, italic, doc);
      parent.append(node);
    } else if (/^https?:\/\//i.test(href)) {
      const node = doc.createElement("a");
      node.href = href;
      node.target = "_blank";
      node.rel = "noopener noreferrer";
      appendInline(node, linkText, doc);
      parent.append(node);
    } else {
      parent.append(whole);
    }
    last = match.index + whole.length;
  }
  if (last < text.length) parent.append(text.slice(last));
}
