import pytest

from onebox.errors import (
    Conflict,
    EngineUnavailable,
    InvalidInput,
    NotFound,
    OneboxError,
    OperationFailed,
    StartFailed,
    exit_code,
    http_status,
)


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (InvalidInput, 2, 422),
        (NotFound, 3, 404),
        (Conflict, 4, 409),
        (EngineUnavailable, 5, 503),
        (OperationFailed, 6, 500),
        (StartFailed, 6, 422),
        (OneboxError, 1, 500),
    ],
)
def test_each_error_kind_has_its_exit_code_and_http_status(
    error: type[OneboxError], code: int, status: int
) -> None:
    assert exit_code(error("x")) == code
    assert http_status(error("x")) == status


def test_an_error_reads_as_what_failed_then_the_fix() -> None:
    assert str(NotFound("Lab 'x' does not exist", "run `onebox up`")) == (
        "Lab 'x' does not exist\n  fix: run `onebox up`"
    )
