"""/metrics parsed by the reference Prometheus client's own parser."""

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def test_metrics_parse_and_follow_the_naming_conventions(base_url):
    # Some traffic first, so request metrics exist.
    urllib.request.urlopen(f"{base_url}/healthz").read()
    text = urllib.request.urlopen(f"{base_url}/metrics").read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families, text
    for name, family in families.items():
        assert name.startswith("tenfold_"), name
        assert family.documentation, f"{name} has no HELP text"
        assert not any(unit in name for unit in ("_ms", "_milliseconds", "_kb", "_mb")), f"{name}: use base units"
    requests = families["tenfold_http_requests"]
    assert requests.type == "counter"
    routes = {s.labels.get("route") for s in requests.samples}
    assert "/healthz" in routes, routes
    latency = families["tenfold_http_request_duration_seconds"]
    assert latency.type == "histogram"
    assert any(s.name.endswith("_bucket") for s in latency.samples)
