"""The library's messages in the command line's terms: a parameter or config key becomes the option
that sets it, and nothing else in a message changes."""

import pytest

from supportlens.cli.common import in_cli_terms


@pytest.mark.parametrize(
    "library, cli",
    [
        (
            "`speaker` must be one of participant, interviewer, all; got 'x'",
            "--speaker must be one of participant, interviewer, all; got 'x'",
        ),
        ("which `speaker='all'` labels too", "which --speaker all labels too"),
        ("run without `resume=True` to start over", "run without --resume to start over"),
        ("`device='cuda'` asked for", "--device cuda asked for"),
        ("and add `cv=5` so that", "and add --cv 5 so that"),
        ("map them with `code_map=MAP.yaml`", "map them with --code-map MAP.yaml"),
        ("`user_a` and `user_b` both name 'Ana'", "--user-a and --user-b both name 'Ana'"),
        ("`output` must end in .csv", "--out must end in .csv"),
        (
            "`overrides=['split.test_size=0.6']`: split.test_size must be between 0 and 0.5",
            "--set split.test_size=0.6: split.test_size must be between 0 and 0.5",
        ),
        ("`overrides=['a=1', 'b=2']`: invalid together", "--set a=1 --set b=2: invalid together"),
        (
            "name it with `data.label_column` in the config",
            "name it with --set data.label_column=NAME (train, audit) or --label-column NAME (evaluate)",
        ),
        (
            "'My code' looks like it: `data.label_column='My code'` in the config",
            "'My code' looks like it: --set 'data.label_column=My code' (train, audit) "
            "or --label-column 'My code' (evaluate)",
        ),
        ("use it with `data.id_column='Nr'` in the config", "use it with --set data.id_column=Nr (train, audit)"),
        (
            "if that is wrong, pass `rules=SpeakerRules.with_interviewers(['NAME'])`",
            "if that is wrong, pass --interviewer NAME",
        ),
        (
            "run from the project folder, or give the config a full path",
            "run from the project folder, or give --config a full path",
        ),
        (
            "add an alias to the codebook (or use another codebook)",
            "add an alias to the codebook (or pass another with --codebook)",
        ),
        (
            "the model has no codebook.yaml; pass `codebook=FILE`",
            "the model has no codebook.yaml; pass --codebook FILE",
        ),
        (
            "Until then `Labeler(review_below=X)` flags passages",
            "Until then 'supportlens predict --review-below X' flags passages",
        ),
    ],
)
def test_parameters_become_options(library, cli):
    assert in_cli_terms(library) == cli


def test_other_text_is_left_as_written():
    """Backticks around anything that is not a parameter (a bundled name, a command to run), a
    parameter's name in plain text or in a path, and a message already in flags stay as they are."""
    for text in (
        "; `codebook` names the one bundled with supportlens",
        "`supportlens import p.qdpx --code-map MAP.yaml --out coded.csv`, then use coded.csv",
        "data/speaker_out.csv: field 'text_column' is empty; the speaker must be named",
        "--speaker must be one of participant, interviewer, all",
    ):
        assert in_cli_terms(text) == text
