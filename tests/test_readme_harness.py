"""The README harness itself (tests/readme): it must catch what it exists to catch."""

from __future__ import annotations

import functools
import io
import os
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.readme import shell
from tests.readme.blocks import block_ids, read_blocks
from tests.readme.names import provide
from tests.readme.pyclaims import ClaimError, check_claim, free_names, instrument
from tests.readme.pyexec import run_example

# --- Python claims -----------------------------------------------------------------------


def run(source: str, first_line: int = 10) -> None:
    run_example(source, "DOC.md", Path("DOC.md"), first_line)


def test_true_claims_pass_in_every_form():
    run(
        "import numpy as np\nimport torch\n"
        "torch.zeros(2, 3, dtype=torch.uint8)  # uint8 (2, 3)\n"
        "a = np.ones((4, 5))  # float64 (4, 5) numpy\n"
        "print(a.shape, 'rest')  # float64 (N, 5)\n"
        "for _ in range(2):\n"
        "    t = torch.ones(1, 1)  # float32 (1, 1) torch\n"
    )


@pytest.mark.parametrize(
    ("line", "claim"),
    [
        ("torch.zeros(2, 3, dtype=torch.uint8)", "float32 (2, 3)"),
        ("torch.zeros(2, 3, dtype=torch.uint8)", "uint8 (2, 4)"),
        ("torch.zeros(2, 3, dtype=torch.uint8)", "uint8 (2, 3, 1)"),
        ("torch.zeros(2, 3, dtype=torch.uint8)", "uint8 (2, 3) numpy"),
        ("x = np.zeros((3, 4))", "float64 (N, N)"),
        ("print(np.zeros((3, 4)).shape)", "float32 (3, 4)"),
    ],
)
def test_a_false_claim_fails_naming_its_readme_line(line, claim):
    with pytest.raises(ClaimError, match=r"DOC\.md:12: the README says"):
        run(f"import numpy as np\nimport torch\n{line}  # {claim}\n")


def test_a_claim_the_checker_cannot_attach_is_an_error_not_ignored():
    source = "for i in range(3):  # uint8 (3,)\n    pass\n"
    with pytest.raises(ClaimError, match=r"DOC\.md:5: a dtype/shape comment"):
        instrument(source, "DOC.md", 5)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(0, 5), max_size=4),
    dtype=st.sampled_from(["uint8", "int64", "float32", "float64", "bool"]),
    use_torch=st.booleans(),
    data=st.data(),
)
def test_claims_hold_exactly_for_the_dtype_shape_and_kind_they_state(shape, dtype, use_torch, data):
    value = np.zeros(shape, dtype=dtype)
    if use_torch:
        value = torch.from_numpy(value)
    kind = "torch" if use_torch else "numpy"
    dims = ", ".join(map(str, shape))
    check_claim(value, f"{dtype} ({dims}) {kind}", "w")
    check_claim(value, f"{dtype} ({', '.join(f'd{i}' for i in range(len(shape)))})", "w")
    other_kind = "numpy" if use_torch else "torch"
    with pytest.raises(ClaimError):
        check_claim(value, f"{dtype} ({dims}) {other_kind}", "w")
    other_dtype = data.draw(st.sampled_from(["uint8", "int64", "float32"]).filter(
        lambda d: d != dtype))  # fmt: skip
    with pytest.raises(ClaimError):
        check_claim(value, f"{other_dtype} ({dims})", "w")
    if shape:
        i = data.draw(st.integers(0, len(shape) - 1))
        wrong = [*shape[:i], shape[i] + 1, *shape[i + 1 :]]
        with pytest.raises(ClaimError):
            check_claim(value, f"{dtype} ({', '.join(map(str, wrong))})", "w")


def test_free_names_are_read_but_never_bound():
    tree = instrument(
        "import os\nfrom a import b as c\ndef f(arg):\n    return arg + local\n"
        "for i in range(2):\n    train_step(i, c, os, missing)\n",
        "DOC.md",
        1,
    )
    assert free_names(tree) == {"local", "train_step", "missing"}


def test_an_undefined_name_nobody_provides_is_named():
    with pytest.raises(LookupError, match="uses nonesuch without defining it"):
        provide({"nonesuch", "epochs"})
    with pytest.raises(LookupError, match="uses torch without defining it"):
        run("x = torch.zeros(1)\n")


def test_blocks_of_one_readme_share_a_session_and_data_is_never_provided():
    """A later block sees what an earlier one defined, as in a reader's session; a name
    no block defines and a reader's code would not (a data set, a step) fails."""
    session: dict = {}
    run_example("def train_step(a):\n    return a + 1\nn = 2\n", "DOC.md", Path("DOC.md"), 1,
                session)  # fmt: skip
    run_example("assert train_step(n) == 3\n", "DOC.md", Path("DOC.md"), 5, session)
    for name in ("train_step", "dataset", "my_dataset"):
        with pytest.raises(LookupError, match=f"uses {name} without defining it"):
            run(f"{name}\n")


# --- blocks and markers ------------------------------------------------------------------

DOC = """\
# Title

<!-- readme-test: skip (needs a cluster) -->
```sh
kubectl apply -k .
```

1. A step:

   <!-- readme-test: skip (needs docker) -->
   ```bash
   docker ps
   ```

<!-- readme-test: skip (orphan) -->

Some text.

<!-- readme-test: skipped because -->
```python
print(1)
```

    indented code

```
unlabeled
```

```json
{"ops": []}
```
"""


def test_blocks_markers_and_their_mistakes(tmp_path):
    path = tmp_path / "DOC.md"
    path.write_text(DOC)
    blocks, problems = read_blocks(path, "DOC.md")
    assert [(b.line, b.lang, b.kind, b.skip) for b in blocks] == [
        (4, "sh", "shell", "needs a cluster"),
        (11, "bash", "shell", "needs docker"),
        (20, "python", "python", None),
        (24, "indented", "unknown", None),
        (26, "", "unknown", None),
        (30, "json", "document", None),
    ]
    assert [str(p) for p in problems] == [
        "DOC.md:15: marker not right above a code block",
        "DOC.md:19: write markers as <!-- readme-test: skip (reason) -->",
    ]
    assert block_ids(blocks)[0] == "DOC.md:sh:kubectl-apply-k"
    assert blocks[5].first_line == '{"ops": []}'


# --- shell -------------------------------------------------------------------------------

SCRIPT = """\
cat > a.json <<'EOF'
{"x": # not a comment: a here-document line
  1}
EOF
# prose, not a claim
curl -X PUT http://host/x \\
     --data-binary @a.json
# -> 201 {"name":"x",...}
unzip -l out.zip   # 000000.png 000001.png, each 4x3
"""


def test_statements_follow_continuations_heredocs_and_their_claims():
    stmts = shell.statements(SCRIPT, 100)
    assert [s.line for s in stmts] == [100, 105, 108]
    assert stmts[0].text.endswith("EOF") and stmts[0].trailing == ""
    assert stmts[1].result is not None and stmts[1].result["status"] == "201"
    assert stmts[2].trailing == "000000.png 000001.png, each 4x3"
    assert shell.trailing_comment("open 'http://h/#frag' # note") == "note"


def _zip(path: Path, sizes: dict[str, tuple[int, int]]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, size in sizes.items():
            buffer = io.BytesIO()
            Image.new("RGB", size).save(buffer, "PNG")
            zf.writestr(name, buffer.getvalue())


def test_checks_status_body_listing_and_image_sizes(tmp_path):
    stmts = shell.statements(SCRIPT, 1)
    ok = shell.Outcome(0, '{"name":"x","version":1}\n', "", [201])
    shell.check(stmts[1], ok, tmp_path, "DOC.md:5")
    with pytest.raises(AssertionError, match="the README says 201, the server answered"):
        shell.check(stmts[1], shell.Outcome(0, "", "", [200]), tmp_path, "DOC.md:5")
    with pytest.raises(AssertionError, match="the README shows the answer as"):
        shell.check(stmts[1], shell.Outcome(0, '{"code":1}', "", [201]), tmp_path, "DOC.md:5")
    with pytest.raises(AssertionError, match=r"HTTP \[422\]"):
        shell.check(stmts[0], shell.Outcome(0, "", "", [422]), tmp_path, "DOC.md:1")

    listing = shell.Outcome(0, "  000000.png\n  000001.png\n2 files\n", "", [])
    _zip(tmp_path / "out.zip", {"000000.png": (4, 3), "000001.png": (4, 3)})
    shell.check(stmts[2], listing, tmp_path, "DOC.md:9")
    _zip(tmp_path / "out.zip", {"000000.png": (4, 3), "000001.png": (3, 4)})
    with pytest.raises(AssertionError, match=r"000001.png is \(3, 4\)"):
        shell.check(stmts[2], listing, tmp_path, "DOC.md:9")
    with pytest.raises(AssertionError, match="it printed"):
        shell.check(stmts[2], shell.Outcome(0, "000000.png\n", "", []), tmp_path, "DOC.md:9")


def test_run_stops_at_the_first_failing_statement(tmp_path):
    stmts = shell.statements("echo one  # note\nfalse\necho never\n", 1)
    outcomes = shell.run(stmts, tmp_path, dict(os.environ), 30)
    assert [(o.rc, o.stdout) for o in outcomes] == [(0, "one\n"), (1, "")]


def test_curl_reports_statuses_and_open_fetches_instead_of_browsing(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "page.html").write_text("<p>hi</p>")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(site))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        code = f"curl -o copy.html {url}/page.html\ncurl {url}/nope\nopen {url}/page.html\n"
        outcomes = shell.run(shell.statements(code, 1), tmp_path, dict(os.environ), 30)
        missing = shell.run(shell.statements(f"open {url}/nope\n", 1), site, dict(os.environ), 30)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert [o.statuses for o in outcomes] == [[200], [404], [200]]
    assert (tmp_path / "copy.html").read_text() == "<p>hi</p>"
    assert missing[0].rc != 0 and missing[0].statuses == [404]
