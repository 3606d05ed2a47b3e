"""Parses a /_outpost/metrics page with the Prometheus project's own Python parser.

    python metrics_page.py URL [URL ...]

Each page must be served as OpenMetrics text and parse with prometheus_client's OpenMetrics
parser (which rejects a family described twice, or a page without `# EOF`). Exits non-zero on
the first page that does not.
"""

import sys
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def check(url):
    with urllib.request.urlopen(url + "/_outpost/metrics", timeout=30) as r:
        content_type = r.headers.get("content-type", "")
        text = r.read().decode("utf-8")
    if not content_type.startswith("application/openmetrics-text"):
        raise SystemExit(f"{url}: served as {content_type!r}")
    families = list(text_string_to_metric_families(text))
    names = [f.name for f in families]
    if len(names) != len(set(names)):
        raise SystemExit(f"{url}: a family appears twice: {names}")
    print(f"{url}: {len(families)} families parsed")


for url in sys.argv[1:]:
    check(url)
