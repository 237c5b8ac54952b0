"""Run selected catalogue cases against a hub and collect a :class:`~rsb_connector.conformance.results.SuiteResult`.

Cases run one after the other, each in isolation (its own patients, its own clients). A case that needs an identity
the run does not have is skipped with the reason; a failed step ends its case (the later steps are marked not run).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from .cases import CaseFunction, implementations
from .catalogue import Case, Catalogue, CatalogueError
from .context import CaseContext, CaseFailure, Environment, MissingNeed
from .results import CaseResult, Outcome, StepResult, SuiteResult, excerpt

__all__ = ["run_case", "run_suite"]


def _blank(case: Case) -> CaseResult:
    return CaseResult(
        id=case.id,
        title=case.title,
        profile=case.profile,
        actor=case.actor,
        reference=case.reference,
        description=case.description,
        steps=[StepResult(n, s.do, s.expect) for n, s in enumerate(case.steps, 1)],
    )


def run_case(case: Case, function: CaseFunction, env: Environment) -> CaseResult:
    """Carry out one case; never raises for what the hub does (that is the result)."""
    result = _blank(case)
    missing = [n for n in case.needs if n not in env.identities and not (n == "seed" and env.seeded)]
    if missing:
        result.outcome = Outcome.SKIPPED
        result.message = f"needs {', '.join(missing)}, which this run does not have"
        return result
    t = CaseContext(case, env, result)
    started = time.perf_counter()
    try:
        function(t)
    except CaseFailure as exc:
        result.outcome = Outcome.FAILED
        step = result.failed_step
        result.message = f"step {step.number}: {exc}" if step else str(exc)
    except MissingNeed as exc:
        result.outcome = Outcome.SKIPPED
        result.message = f"needs {exc}"
    except Exception as exc:
        result.outcome = Outcome.ERROR
        step = result.failed_step
        where = f"step {step.number}: " if step else "setup: "
        result.message = where + f"{type(exc).__name__}: {excerpt(str(exc), 2000)}"
    else:
        unrun = [s.number for s in result.steps if s.outcome is Outcome.SKIPPED]
        if unrun:
            result.outcome = Outcome.ERROR
            result.message = f"the implementation did not carry out step(s) {', '.join(map(str, unrun))}"
        else:
            result.outcome = Outcome.PASSED
    finally:
        t.close()
        result.seconds = time.perf_counter() - started
    if result.outcome is not Outcome.PASSED:
        for step in result.steps:
            if step.outcome is Outcome.SKIPPED and not step.message:
                step.message = "not run"
    return result


def run_suite(
    catalogue: Catalogue,
    env: Environment,
    *,
    only: Iterable[str] = (),
    profiles: Iterable[str] = (),
    cases: Sequence[Case] | None = None,
    on_start: Callable[[Case], None] | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
    caller: str = "",
) -> SuiteResult:
    """Run the selected cases (``only``: ids or ``PREFIX*``; ``profiles``) against ``env``.

    Raises:
        CatalogueError: the selection names no case, or a case has no implementation.
    """
    selected = list(cases) if cases is not None else catalogue.select(only, profiles)
    if not selected:
        raise CatalogueError("the selection holds no case")
    registry = implementations()
    missing = [c.id for c in selected if c.id not in registry]
    if missing:
        raise CatalogueError(f"no implementation for {', '.join(missing)}")
    started = datetime.now(UTC)
    results: list[CaseResult] = []
    for case in selected:
        if on_start is not None:
            on_start(case)
        result = run_case(case, registry[case.id], env)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return SuiteResult(
        title="rsb-connector conformance run",
        target=env.hub_url,
        started=started,
        finished=datetime.now(UTC),
        cases=results,
        caller=caller,
    )
