"""The static rating page of a MOS study (`stablepaint mos make`): an HTML template with its own script, no server and
no external resource; the ratings stay in the browser (localStorage) until the rater downloads them."""

from __future__ import annotations

import html
from typing import Dict, Sequence

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 60em; margin: 1em auto; padding: 0 1em; }}
.item {{ margin: 1.5em 0; text-align: center; }}
.item img {{ max-width: 100%; max-height: 70vh; image-rendering: auto; border: 1px solid #ccc; }}
.scale label {{ display: inline-block; margin: 0.3em 0.6em; cursor: pointer; }}
.nav {{ text-align: center; margin: 1em 0; }}
#progress {{ font-weight: bold; }}
.hidden {{ display: none; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>You will see {count} colorized illustrations, one after the other. Rate the <b>colorization quality</b> of each
from 1 to 5. You are not told how an image was made, and the order is random.</p>
<ul>{scale_list}</ul>
<p><label>Your rater id (a nickname, no personal data): <input id="rater" type="text" autocomplete="off"></label></p>
<div id="items">
{items}
</div>
<div class="nav">
<button id="prev" type="button">&larr; Previous</button>
<span id="progress"></span>
<button id="next" type="button">Next &rarr;</button>
</div>
<div class="nav">
<button id="download-json" type="button">Download ratings (JSON)</button>
<button id="download-csv" type="button">Download ratings (CSV)</button>
</div>
<p>When every image is rated, download your ratings and send the file back to the study organizer.</p>
<script>
const STUDY = "{study}";
const PER_PAGE = {per_page};
const FORMAT = "{ratings_format}";
const items = Array.from(document.querySelectorAll(".item"));
const pages = Math.ceil(items.length / PER_PAGE);
const store = "stablepaint-mos-" + STUDY;
let page = 0;
let saved = {{}};
try {{ saved = JSON.parse(localStorage.getItem(store) || "{{}}"); }} catch (e) {{ saved = {{}}; }}
if (saved.rater) document.getElementById("rater").value = saved.rater;
for (const [item, rating] of Object.entries(saved.ratings || {{}})) {{
  const input = document.querySelector('input[name="r-' + item + '"][value="' + rating + '"]');
  if (input) input.checked = true;
}}
function ratings() {{
  const result = {{}};
  for (const item of items) {{
    const checked = item.querySelector("input:checked");
    if (checked) result[item.dataset.item] = Number(checked.value);
  }}
  return result;
}}
function save() {{
  try {{
    localStorage.setItem(store, JSON.stringify({{rater: document.getElementById("rater").value, ratings: ratings()}}));
  }} catch (e) {{}}
}}
function show() {{
  items.forEach((item, i) => item.classList.toggle("hidden", Math.floor(i / PER_PAGE) !== page));
  const done = Object.keys(ratings()).length;
  document.getElementById("progress").textContent =
    "page " + (page + 1) + " / " + pages + " \\u2014 " + done + " / " + items.length + " rated";
}}
document.getElementById("prev").onclick = () => {{ if (page > 0) {{ page--; show(); }} }};
document.getElementById("next").onclick = () => {{ if (page < pages - 1) {{ page++; show(); }} }};
document.addEventListener("change", () => {{ save(); show(); }});
function rater() {{
  const value = document.getElementById("rater").value.trim();
  if (!value) {{ alert("Please enter a rater id first."); return null; }}
  return value;
}}
function download(name, type, text) {{
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], {{type: type}}));
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
}}
function check() {{
  const missing = items.length - Object.keys(ratings()).length;
  return missing === 0 || confirm(missing + " image(s) are not rated yet. Download anyway?");
}}
document.getElementById("download-json").onclick = () => {{
  const id = rater();
  if (id === null || !check()) return;
  const rows = Object.entries(ratings()).map(([item, rating]) => ({{item: item, rating: rating}}));
  const data = {{format: FORMAT, study: STUDY, rater: id, ratings: rows}};
  download("ratings-" + id + ".json", "application/json", JSON.stringify(data, null, 1));
}};
document.getElementById("download-csv").onclick = () => {{
  const id = rater();
  if (id === null || !check()) return;
  const quoted = '"' + id.replace(/"/g, '""') + '"';
  const lines = ["study,rater,item,rating"];
  for (const [item, rating] of Object.entries(ratings())) lines.push([STUDY, quoted, item, rating].join(","));
  download("ratings-" + id + ".csv", "text/csv", lines.join("\\n") + "\\n");
}};
show();
</script>
</body>
</html>
"""


def render_page(
    study_id: str, ids: Sequence[str], per_page: int, title: str, scale: Dict[int, str], ratings_format: str
) -> str:
    """The study's `index.html`: one blind item per anonymous id in `ids`, each with a radio button per `scale`
    value, and the script that keeps the ratings in the browser and downloads them as `ratings_format` JSON or CSV."""
    scale_list = "".join(f"<li><b>{value}</b> = {html.escape(label)}</li>" for value, label in scale.items())
    blocks = []
    for number, token in enumerate(ids, 1):
        choices = "".join(
            f'<label><input type="radio" name="r-{token}" value="{value}"> {value} {html.escape(label)}</label>'
            for value, label in scale.items()
        )
        blocks.append(
            f'<div class="item" data-item="{token}"><p>Image {number} / {len(ids)}</p>'
            f'<img src="images/{token}.png" alt="illustration {number}" loading="lazy">'
            f'<div class="scale">{choices}</div></div>'
        )
    return _PAGE.format(
        title=html.escape(title),
        count=len(ids),
        scale_list=scale_list,
        items="\n".join(blocks),
        study=study_id,
        per_page=per_page,
        ratings_format=ratings_format,
    )
