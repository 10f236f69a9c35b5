#include "hub/web_page.h"

namespace lorahub::hub {
namespace {

// Everything the page shows comes from the API as text and is inserted with textContent, never
// as HTML, so module metadata cannot inject markup.
constexpr std::string_view kPage = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>LoraHub module hub</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
  header { background: #23324d; color: white; padding: 14px 24px; }
  header h1 { margin: 0; font-size: 20px; }
  header p { margin: 4px 0 0; opacity: .8; font-size: 13px; }
  main { display: flex; gap: 20px; padding: 20px 24px; align-items: flex-start; }
  #left { flex: 1 1 45%; min-width: 300px; }
  #card { flex: 1 1 55%; background: white; border: 1px solid #d8dce3; border-radius: 8px;
          padding: 16px 20px; min-height: 120px; }
  form { display: flex; gap: 8px; flex-wrap: wrap; margin-bottom: 12px; }
  input { padding: 6px 8px; border: 1px solid #b8bfcc; border-radius: 5px; font-size: 14px; }
  #q { flex: 1 1 200px; }
  button { padding: 6px 14px; border: 0; border-radius: 5px; background: #3a6fd8; color: white;
           font-size: 14px; cursor: pointer; }
  ul#results { list-style: none; padding: 0; margin: 0; }
  ul#results li { background: white; border: 1px solid #d8dce3; border-radius: 8px;
                  padding: 10px 14px; margin-bottom: 8px; cursor: pointer; }
  ul#results li:hover { border-color: #3a6fd8; }
  .id { font-weight: 600; color: #23324d; }
  .sub { font-size: 12px; color: #5b6475; margin-top: 3px; }
  .tag { display: inline-block; background: #e6edfb; color: #23458f; border-radius: 10px;
         padding: 1px 8px; font-size: 12px; margin: 2px 4px 0 0; }
  table { border-collapse: collapse; width: 100%; font-size: 14px; }
  td, th { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eceef2; }
  th { color: #5b6475; font-weight: 500; width: 130px; }
  #files td.size { text-align: right; font-variant-numeric: tabular-nums; }
  code { font-size: 12px; }
  #status { font-size: 13px; color: #5b6475; margin: 6px 0; }
</style>
</head>
<body>
<header><h1>LoraHub module hub</h1>
<p>LoRA modules to compose with <code>lorahub learn --hub</code>, or to load with
<code>PeftModel.from_pretrained</code> (set <code>HF_ENDPOINT</code> to this server).</p></header>
<main>
<section id="left">
  <form id="search">
    <input id="q" name="q" placeholder="search ids, tasks, descriptions">
    <input id="base" name="base" placeholder="base model" size="16">
    <input id="rank" name="rank" placeholder="rank" size="4">
    <input id="tag" name="tag" placeholder="tag" size="8">
    <button type="submit" id="go">Search</button>
  </form>
  <div id="status"></div>
  <ul id="results"></ul>
</section>
<section id="card"><p class="sub">Select a module to see its card.</p></section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function humanSize(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}
async function getJson(url) {
  const r = await fetch(url);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}
async function search(ev) {
  if (ev) ev.preventDefault();
  const p = new URLSearchParams({ full: "false", limit: "100" });
  if ($("q").value) p.set("search", $("q").value);
  if ($("base").value) p.set("base_model", $("base").value);
  if ($("rank").value) p.set("rank", $("rank").value);
  if ($("tag").value) p.set("tag", $("tag").value);
  const list = $("results");
  list.replaceChildren();
  try {
    const models = await getJson("/api/models?" + p);
    $("status").textContent = models.length + (models.length === 1 ? " module" : " modules");
    for (const m of models) {
      const li = el("li");
      li.dataset.id = m.id;
      li.appendChild(el("div", m.id, "id"));
      const h = m.lorahub;
      li.appendChild(el("div", [h.task || "no task", h.base_model, "rank " + h.rank].join(" · "), "sub"));
      for (const t of h.tags) li.appendChild(el("span", t, "tag"));
      li.addEventListener("click", () => showCard(m.id));
      list.appendChild(li);
    }
  } catch (e) {
    $("status").textContent = "search failed: " + e.message;
  }
}
async function showCard(id) {
  const card = $("card");
  card.replaceChildren(el("p", "loading " + id + " ...", "sub"));
  let m;
  try { m = await getJson("/api/models/" + id); } catch (e) {
    card.replaceChildren(el("p", "cannot load " + id + ": " + e.message)); return;
  }
  const h = m.lorahub;
  const title = el("h2", m.id);
  title.id = "card-title";
  const meta = el("table");
  meta.id = "meta";
  const rows = [["task", h.task], ["description", h.description], ["base model", h.base_model],
                ["rank", h.rank], ["alpha", h.alpha], ["targets", h.targets.join(", ")],
                ["license", h.license], ["tags", h.tags.join(", ")], ["revision", h.revision],
                ["uploaded", h.created]];
  for (const [k, v] of rows) {
    const tr = el("tr");
    tr.appendChild(el("th", k));
    const td = el("td", v === "" ? "—" : v);
    td.dataset.field = k;
    tr.appendChild(td);
    meta.appendChild(tr);
  }
  const files = el("table");
  files.id = "files";
  const head = el("tr");
  head.append(el("th", "file"), el("th", "size"), el("th", "sha256"));
  files.appendChild(head);
  for (const s of m.siblings) {
    const tr = el("tr");
    const name = el("td");
    const a = el("a", s.rfilename);
    a.href = "/" + m.id + "/resolve/" + m.sha + "/" + s.rfilename;
    name.appendChild(a);
    tr.append(name, el("td", humanSize(s.size), "size"), el("td", s.lfs.sha256.slice(0, 16) + "…"));
    tr.lastChild.title = s.lfs.sha256;
    files.appendChild(tr);
  }
  const use = el("pre");
  use.appendChild(el("code", 'HF_ENDPOINT=' + location.origin + ' python -c "from peft import PeftModel; ' +
                    'PeftModel.from_pretrained(base, \'' + m.id + '\')"'));
  card.replaceChildren(title, meta, el("h3", "Files"), files, el("h3", "Use"), use);
}
$("search").addEventListener("submit", search);
search();
</script>
</body>
</html>
)html";

}  // namespace

std::string_view web_page_html() {
  return kPage;
}

}  // namespace lorahub::hub
