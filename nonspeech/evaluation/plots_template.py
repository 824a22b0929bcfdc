"""An HTML page template for `dvc plots show --html-template` that draws the plots with no network."""

from __future__ import annotations

from pathlib import Path

VEGA_LITE = "5.21"  # DVC writes Vega-Lite v5 specifications
PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    <title>nonspeech plots</title>
    <script>{bundle}</script>
    <style>body {{ font-family: sans-serif; }} div {{ display: inline-block; vertical-align: top; margin: 8px; }}</style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def vega_bundle() -> str:
    """Vega, Vega-Lite and Vega-Embed in one script (from vl-convert), safe to inline in a <script> element."""
    import vl_convert

    return vl_convert.javascript_bundle(vl_version=VEGA_LITE).replace("</script", "<\\/script")


def write_template(out: Path) -> None:
    """Write the template: DVC fills {plot_divs} with vegaEmbed calls that find the inlined libraries."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(PAGE.format(bundle=vega_bundle()), encoding="utf-8")
