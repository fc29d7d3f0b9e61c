"""The name a ``file.py`` entry point is imported under in a job, for any file name a user
gives: its stem where ``import stem`` would name it so (pickles of its classes then load in its
folder), a private name where the stem is not a module name or is another module's, and never
in place of a module the job already has."""
import keyword
import sys
import tempfile
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from asha_hpc.job.entrypoint import PRIVATE_PREFIX, resolve_entrypoint

STEMS = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/\\\0."), min_size=1,
            max_size=20),
    st.sampled_from(sorted(sys.stdlib_module_names)),
    st.sampled_from(sorted(keyword.kwlist)),
    st.sampled_from(["yaml", "numpy", "submitit", "asha_hpc", "train", "my-train", "2nd_try"]),
)


@settings(max_examples=60, deadline=None)
@given(stem=STEMS)
@example(stem="code")
@example(stem="train")
def test_any_file_name_imports_under_its_stem_or_a_private_name(stem):
    stem = stem.strip() or "x"
    before = dict(sys.modules)
    path_before = list(sys.path)
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / f"{stem}.py"
        try:
            f.write_text("class Thing:\n    pass\n\ndef train(trial):\n    return Thing()\n")
        except OSError:  # a name this filesystem refuses (too long in bytes)
            return
        try:
            fn = resolve_entrypoint(f"{f.name}:train", d)
            name = type(fn(None)).__module__
            mine = stem.isidentifier() and not keyword.iskeyword(stem) and \
                stem not in sys.stdlib_module_names and stem not in before
            assert name == (stem if mine else PRIVATE_PREFIX + stem), name
            assert sys.modules[PRIVATE_PREFIX + stem] is sys.modules[name]  # old pickles load
            # no module the job had is replaced by the user's file
            assert all(sys.modules.get(k) is v for k, v in before.items())
        finally:
            for k in set(sys.modules) - set(before):
                del sys.modules[k]
            sys.path[:] = path_before
