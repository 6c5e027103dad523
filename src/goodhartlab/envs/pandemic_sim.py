"""The agent-based epidemic core of the pandemic env: a numpy-batched "light" PandemicSimulator.

Why our own simulator: the seed's Sony/Pan et al. PandemicSimulator (~9k lines, git-only) is not
installable here (specs/orpo.md §2.3, §6). This keeps its *structure*, not its numbers: a city of
500 persons (100 children, 300 office workers, 100 retirees) in 150 homes, 2 grocery stores,
2 offices (150 workers each), 10 schools, 1 hospital, 2 retail stores, 2 hair salons,
1 restaurant and 1 bar; hourly daily routines; an SEIR-type disease with age- and risk-dependent
hospitalization and death, two strains (alpha and a more contagious delta arriving on a day in
[95, 105)); testing with false positives/negatives; and the five "Austin" regulation stages.

Every array has a leading batch axis B (independent simulations) and a person axis P. Copy b draws
all its randomness from its own generator, one block per simulated day, so copy b of a batch
follows exactly the same path as a 1-copy batch seeded alike (the vector env relies on it).

Hour model: a susceptible person at location l in hour h is infected with probability
1 - prod_s (1 - c_l * f_l(stage) * beta_s) ** I_{l,s}, where I_{l,s} counts infectious persons of
strain s at l, c_l is the location type's contact fraction and f_l the stage's transmission
factor (hygiene, masks and social distancing). Disease progression and the decision to stay home
when sick happen once a day; tests run at hours 7, 15 and 23 (the three observation samples).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_PERSONS = 500
N_CHILDREN, N_WORKERS, N_RETIREES = 100, 300, 100
CHILD, WORKER, RETIREE = 0, 1, 2
INITIAL_EXPOSED = 6
INFECTION_THRESHOLD = 10  # tested-infected persons above which the obs flag is set
DELTA_DAYS = (95, 105)
SPREAD_RATE = ((0.021, 0.01), (0.03, 0.01))  # (mean, std) per strain: alpha, delta
SAMPLE_HOURS = (7, 15, 23)  # the three observation samples of a day (every 8 h)

# Location types and how many of each (index order = location id order).
HOME, GROCERY, OFFICE, SCHOOL, HOSPITAL, RETAIL, SALON, RESTAURANT, BAR = range(9)
TYPE_COUNTS = np.array([150, 2, 2, 10, 1, 2, 2, 1, 1])
TYPE_OF_LOCATION = np.repeat(np.arange(9), TYPE_COUNTS)
FIRST_OF_TYPE = np.concatenate([[0], np.cumsum(TYPE_COUNTS)[:-1]])
N_LOCATIONS = int(sum(TYPE_COUNTS))
NOWHERE = N_LOCATIONS  # the dead: a location with no contacts
CONTACT_FRACTION = np.array([0.2, 0.03, 0.011, 0.08, 0.0, 0.03, 0.3, 0.08, 0.15])
CAPACITY = np.array([0, 30, 150, 10, 5, 30, 5, 30, 30])  # for the gathering limits

# Disease states.
SUSCEPTIBLE, EXPOSED, INFECTIOUS, CRITICAL, RECOVERED, DEAD = range(6)
LATENT_END = 1 / 3  # daily P(exposed -> infectious)
RECOVERY = 1 / 7  # daily P(infectious -> recovered)
CRITICAL_RECOVERY = 1 / 21
SYMPTOMATIC = 0.6
HOSPITALIZATION = np.array([0.004, 0.02, 0.1])  # daily, symptomatic, by CHILD/WORKER/RETIREE
DEATH = np.array([0.003, 0.01, 0.03])  # daily while critical
HIGH_RISK = np.array([0.05, 0.1, 0.4])
HIGH_RISK_FACTOR = 2.0
HOSPITAL_CAPACITY = 5
OVER_CAPACITY_DEATH_FACTOR = 2.0

# Testing (per day); tested status categories in the observation's order.
T_CRITICAL, T_DEAD, T_INFECTED, T_NONE, T_RECOVERED = range(5)
SPONTANEOUS_TEST, SYMPTOMATIC_TEST, CRITICAL_TEST, RETEST = 0.3, 0.3, 1.0, 0.033
FALSE_POSITIVE, FALSE_NEGATIVE = 0.001, 0.01

# Regulation stages 0-4 ("austin_regulations").
SOCIAL_DISTANCING = np.array([0.0, 0.0, 0.3, 0.5, 0.7])
HYGIENE_FACTOR, MASK_FACTOR = 0.9, 0.8
GATHERING_LIMIT = np.array([[1e9, 1e9], [50, 25], [25, 10], [0, 0], [0, 0]])  # low/high risk
COMPLIANCE = 0.99

# Daily outings: type and its probability by person kind; start hour by kind (weekday) and type.
OUTINGS = np.array([GROCERY, RETAIL, SALON, RESTAURANT, BAR])
OUTING_PROB = np.array(
    [[0.05, 0.05, 0.01, 0.05, 0.0], [0.15, 0.08, 0.02, 0.08, 0.08], [0.3, 0.1, 0.03, 0.05, 0.02]]
)
OUTING_START = np.array([[16, 16, 16, 19, 21], [17, 17, 17, 19, 21], [10, 10, 10, 12, 20]])
WEEKEND_OUTING_START = np.array([11, 11, 11, 19, 21])
OUTING_HOURS = 2
WORK_START, WORK_END = np.array([8, 9, 24]), np.array([16, 17, 24])  # by kind; retirees never

# Rows of the per-day random block of one copy.
ROW_HOURS = 0  # 24 rows: infection draws
ROW_OUTING, ROW_STORE, ROW_COMPLY, ROW_PROGRESS, ROW_SYMPTOMS = 24, 25, 26, 27, 28
ROW_TEST, ROW_RESULT = 29, 32  # 3 rows each (one per sample)
N_ROWS = 35


@dataclass
class Population:
    """Static per-copy assignments drawn at reset. Shape: every field (B, P)."""

    kind: np.ndarray
    home: np.ndarray
    work: np.ndarray  # school or office location id (retirees: their home)
    high_risk: np.ndarray
    symptomatic: np.ndarray  # drawn when a person becomes infectious

    def assign(self, rows: np.ndarray, other: Population) -> None:
        """Overwrite copies `rows` with `other` (one row per selected copy)."""
        for name in self.__dataclass_fields__:
            getattr(self, name)[rows] = getattr(other, name)


def draw_population(rng: np.random.Generator) -> Population:
    """One copy's city: kinds in fixed numbers, random homes, schools, offices, risk."""
    kind = np.repeat([CHILD, WORKER, RETIREE], [N_CHILDREN, N_WORKERS, N_RETIREES])
    home = rng.integers(TYPE_COUNTS[HOME], size=N_PERSONS)
    school = FIRST_OF_TYPE[SCHOOL] + rng.integers(TYPE_COUNTS[SCHOOL], size=N_PERSONS)
    office = FIRST_OF_TYPE[OFFICE] + rng.permutation(N_PERSONS) % TYPE_COUNTS[OFFICE]
    work = np.where(kind == CHILD, school, np.where(kind == WORKER, office, home))
    high_risk = rng.random(N_PERSONS) < HIGH_RISK[kind]
    return Population(
        kind[None], home[None], work[None], high_risk[None], np.zeros((1, N_PERSONS), bool)
    )


def stage_transmission(stage: np.ndarray) -> np.ndarray:
    """Per-location hazard multiplier c_l * f_l(stage): contact fraction, hygiene, masks, distance.

    Why per type: masks and distancing act in public places, hygiene everywhere.

    Shape: stage (B,) int -> (B, N_LOCATIONS + 1); the last column (NOWHERE) is 0
    """
    public = TYPE_OF_LOCATION != HOME
    hygiene = np.where(stage >= 1, HYGIENE_FACTOR, 1.0)[:, None]
    mask = np.where((stage >= 2)[:, None] & public, MASK_FACTOR, 1.0)
    distance = np.where(public, 1.0 - SOCIAL_DISTANCING[stage][:, None], 1.0)
    factor = CONTACT_FRACTION[TYPE_OF_LOCATION] * hygiene * mask * distance
    return np.concatenate([factor, np.zeros((len(stage), 1))], axis=1)


def locked_types(stage: np.ndarray) -> np.ndarray:
    """Which location types are closed: schools and salons at >= 2, offices and retail at 4.

    Shape: stage (B,) -> (B, 9) bool
    """
    locked = np.zeros((len(stage), 9), bool)
    locked[:, [SCHOOL, SALON]] = (stage >= 2)[:, None]
    locked[:, [OFFICE, RETAIL]] = (stage >= 4)[:, None]
    return locked


def plan_day(
    pop: Population, state: np.ndarray, stage: np.ndarray, day: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """Where each person is at each hour of this day. Shape: u (B, N_ROWS, P) -> (24, B, P) int

    Routine: home by default; children at school 8-16 and workers at the office 9-17 on
    weekdays unless locked; at most one 2-hour outing (store, salon, restaurant, bar) skipped
    when the place is locked or above the person's gathering limit (grocery is exempt); the
    critical at the hospital; the dead nowhere; symptomatic persons stay home from stage 1 on.
    Compliance (per person and day, 0.99) applies to the gathering limit and staying home.
    """
    weekend = (day % 7 >= 5)[:, None]
    locked = locked_types(stage)
    comply = u[:, ROW_COMPLY] < COMPLIANCE
    cum = np.cumsum(OUTING_PROB[pop.kind], axis=-1)  # (B, P, 5)
    choice = (u[:, ROW_OUTING, :, None] >= cum).sum(-1)  # 5 = no outing
    has_outing = choice < len(OUTINGS)
    kind_of = OUTINGS[np.minimum(choice, len(OUTINGS) - 1)]
    limit = GATHERING_LIMIT[stage][np.arange(len(stage))[:, None], pop.high_risk.astype(int)]
    too_big = (CAPACITY[kind_of] > limit) & (kind_of != GROCERY) & comply
    rows = np.arange(len(stage))[:, None]
    has_outing &= ~locked[rows, kind_of] & ~too_big
    store = (u[:, ROW_STORE] * TYPE_COUNTS[kind_of]).astype(int)
    outing_loc = FIRST_OF_TYPE[kind_of] + store
    start = np.where(weekend, WEEKEND_OUTING_START[np.minimum(choice, 4)], 0)
    start = np.where(weekend, start, OUTING_START[pop.kind, np.minimum(choice, 4)])
    works = ~weekend & ~locked[rows, TYPE_OF_LOCATION[pop.work]] & (pop.kind != RETIREE)
    hour = np.arange(24)[:, None, None]
    begin, end = WORK_START[pop.kind], WORK_END[pop.kind]
    at_work = works & (begin <= hour) & (hour < end)  # (24, B, P)
    out = has_outing & (start <= hour) & (hour < start + OUTING_HOURS)
    plan = np.where(out, outing_loc, np.where(at_work, pop.work, pop.home))
    sick_home = comply & (stage >= 1)[:, None] & (state == INFECTIOUS) & pop.symptomatic
    plan = np.where(sick_home[None], pop.home[None], plan)
    plan = np.where((state == CRITICAL)[None], FIRST_OF_TYPE[HOSPITAL], plan)
    return np.where((state == DEAD)[None], NOWHERE, plan)


@dataclass
class DaySamples:
    """The three 8-hourly samples of one simulated day. Shapes: (B, 3) and summary (B, 3, 10)."""

    summary: np.ndarray  # tested fractions: [critical, dead, infected, none, recovered] x strain
    above_threshold: np.ndarray  # tested-infected persons > INFECTION_THRESHOLD
    critical: np.ndarray  # true fraction of critical persons
    infected: np.ndarray  # true fraction infectious + critical + dead (latent E not counted)


class PandemicSim:
    """B independent cities; `step_day(stage)` simulates 24 hours of each under its stage."""

    def __init__(self, num: int) -> None:
        self.num = num
        zeros = np.zeros((num, N_PERSONS), np.int64)
        self.pop = Population(
            zeros.copy(), zeros.copy(), zeros.copy(), *np.zeros((2, num, N_PERSONS), bool)
        )
        self.state = zeros.copy()
        self.strain = zeros.copy()
        self.tested = np.full((num, N_PERSONS), T_NONE, np.int64)
        self.tested_strain = zeros.copy()
        self.beta = np.zeros((num, 2))
        self.delta_day = np.zeros(num, np.int64)
        self.day = np.zeros(num, np.int64)
        self.rngs = [np.random.default_rng() for _ in range(num)]

    def reset_rows(self, rows: np.ndarray) -> None:
        """New cities in copies `rows` (bool (B,)), each drawn from its own generator."""
        for i in np.flatnonzero(rows):
            rng = self.rngs[i]
            self.pop.assign(np.array([i]), draw_population(rng))
            self.beta[i] = np.maximum([rng.normal(m, s) for m, s in SPREAD_RATE], 0.0)
            self.delta_day[i] = rng.integers(*DELTA_DAYS)
            self.state[i] = SUSCEPTIBLE
            self.strain[i] = 0
            self.state[i, rng.choice(N_PERSONS, INITIAL_EXPOSED, replace=False)] = EXPOSED
        self.tested[rows] = T_NONE
        self.tested_strain[rows] = 0
        self.day[rows] = 0

    def step_day(self, stage: np.ndarray) -> DaySamples:
        """Simulate one day (24 hourly steps) of every copy. Shape: stage (B,) int in 0..4"""
        self._introduce_delta()
        u = np.stack([rng.random((N_ROWS, N_PERSONS)) for rng in self.rngs])
        self._progress(u[:, ROW_PROGRESS], u[:, ROW_SYMPTOMS])
        plan = plan_day(self.pop, self.state, stage, self.day, u)
        hazard = stage_transmission(stage)[:, :, None] * self.beta[:, None, :]  # (B, L+1, 2)
        log_escape = np.log1p(-np.minimum(hazard, 1.0 - 1e-12))
        samples = []
        flat = (plan + (N_LOCATIONS + 1) * np.arange(self.num)[:, None]).reshape(24, -1)
        for hour in range(24):
            self._infect(flat[hour], log_escape, u[:, ROW_HOURS + hour])
            if hour in SAMPLE_HOURS:
                k = SAMPLE_HOURS.index(hour)
                self._test(u[:, ROW_TEST + k], u[:, ROW_RESULT + k])
                samples.append(self.sample())
        self.day += 1
        return DaySamples(*(np.stack(parts, axis=1) for parts in zip(*samples)))

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Tested summary (B, 10), threshold flag, true critical and infected fractions (B,)."""
        flat = self.tested_strain * 5 + self.tested + 10 * np.arange(self.num)[:, None]
        summary = np.bincount(flat.ravel(), minlength=10 * self.num).reshape(self.num, 10)
        summary = summary / N_PERSONS
        for strain in range(2):
            cols = [strain * 5 + c for c in (T_CRITICAL, T_DEAD, T_INFECTED, T_RECOVERED)]
            summary[:, strain * 5 + T_NONE] = np.maximum(1.0 - summary[:, cols].sum(axis=1), 0)
        n_tested_infected = (self.tested == T_INFECTED).sum(axis=1)
        infected = np.isin(self.state, (INFECTIOUS, CRITICAL, DEAD)).mean(axis=1)
        return (
            summary,
            n_tested_infected > INFECTION_THRESHOLD,
            (self.state == CRITICAL).mean(axis=1),
            infected,
        )

    def _introduce_delta(self) -> None:
        """On its delta day, a copy gets INITIAL_EXPOSED new delta exposures among the susceptible."""
        for i in np.flatnonzero(self.day == self.delta_day):
            candidates = np.flatnonzero(self.state[i] == SUSCEPTIBLE)
            chosen = self.rngs[i].permutation(candidates)[:INITIAL_EXPOSED]
            self.state[i, chosen] = EXPOSED
            self.strain[i, chosen] = 1

    def _infect(self, flat: np.ndarray, log_escape: np.ndarray, u: np.ndarray) -> None:
        """One hour of contacts. Shape: flat (B*P,) = b*(L+1) + location, log_escape (B, L+1, 2),
        u (B, P)"""
        infectious = self.state == INFECTIOUS
        if not infectious.any():
            return
        n_loc = N_LOCATIONS + 1
        sources = infectious.ravel()
        pairs = flat[sources] * 2 + self.strain.ravel()[sources]
        counts = np.bincount(pairs, minlength=self.num * n_loc * 2).reshape(self.num, n_loc, 2)
        log_q = (counts * log_escape).reshape(-1, 2)  # log P(escape strain s at l)
        total = log_q.sum(-1)[flat].reshape(self.num, N_PERSONS)
        p_infect = -np.expm1(total)
        new = (self.state == SUSCEPTIBLE) & (u < p_infect)
        if not new.any():
            return
        delta_part = log_q[flat, 1].reshape(self.num, N_PERSONS)
        share = np.divide(delta_part, total, out=np.zeros_like(total), where=total < 0)
        self.state[new] = EXPOSED
        self.strain[new] = (u < p_infect * share)[new]

    def _progress(self, u: np.ndarray, u_symptoms: np.ndarray) -> None:
        """Daily transitions: E->I (symptomatic or not), I->C or R, C->D or R. Shape: u (B, P)"""
        st, kind = self.state, self.pop.kind
        risk = np.where(self.pop.high_risk, HIGH_RISK_FACTOR, 1.0)
        p_critical = HOSPITALIZATION[kind] * risk * self.pop.symptomatic
        over = (st == CRITICAL).sum(axis=1, keepdims=True) > HOSPITAL_CAPACITY
        p_death = DEATH[kind] * np.where(over, OVER_CAPACITY_DEATH_FACTOR, 1.0)
        to_infectious = (st == EXPOSED) & (u < LATENT_END)
        is_i, is_c = st == INFECTIOUS, st == CRITICAL
        to_critical = is_i & (u < p_critical)
        i_recovers = is_i & ~to_critical & (u < p_critical + RECOVERY)
        dies = is_c & (u < p_death)
        c_recovers = is_c & ~dies & (u < p_death + CRITICAL_RECOVERY)
        self.pop.symptomatic[to_infectious] = u_symptoms[to_infectious] < SYMPTOMATIC
        st[to_infectious] = INFECTIOUS
        st[to_critical] = CRITICAL
        st[i_recovers | c_recovers] = RECOVERED
        st[dies] = DEAD
        self.tested[dies] = T_DEAD  # deaths are always known
        self.tested_strain[dies] = self.strain[dies]

    def _test(self, u_test: np.ndarray, u_result: np.ndarray) -> None:
        """One third of a day's testing; positives carry the person's strain. Shape: (B, P)"""
        st = self.state
        symptomatic = (st == INFECTIOUS) & self.pop.symptomatic
        p_day = np.where(self.tested == T_INFECTED, RETEST, SPONTANEOUS_TEST)
        p_day = np.where(symptomatic, np.maximum(p_day, SYMPTOMATIC_TEST), p_day)
        p_day = np.where(st == CRITICAL, CRITICAL_TEST, p_day)
        p_day = np.where(st == DEAD, 0.0, p_day)
        tested = u_test < 1.0 - (1.0 - p_day) ** (1.0 / len(SAMPLE_HOURS))
        infected = np.isin(st, (EXPOSED, INFECTIOUS, CRITICAL))
        positive = np.where(infected, u_result >= FALSE_NEGATIVE, u_result < FALSE_POSITIVE)
        was_positive = np.isin(self.tested, (T_INFECTED, T_CRITICAL, T_RECOVERED))
        result = np.where(
            positive,
            np.where(st == CRITICAL, T_CRITICAL, T_INFECTED),
            np.where(was_positive, T_RECOVERED, T_NONE),
        )
        self.tested = np.where(tested, result, self.tested)
        new_strain = np.where(positive & infected, self.strain, 0)
        keep_strain = ~positive & was_positive
        self.tested_strain = np.where(tested & ~keep_strain, new_strain, self.tested_strain)


def contact_weight(plan: np.ndarray, stage: np.ndarray, public_only: bool = False) -> np.ndarray:
    """Expected person-to-person contacts of a day: sum over hours and locations of
    pairs(n_{h,l}) * c_l * f_l(stage) (what the infection hazard scales with).

    Why: a direct measure of how much a stage cuts mixing, independent of who is infected.
    `public_only` leaves out homes (where a lockdown *adds* hours together).

    Shape: plan (24, B, P) location ids, stage (B,) -> (B,)
    """
    n_loc, num = N_LOCATIONS + 1, plan.shape[1]
    flat = (plan + n_loc * np.arange(num)[:, None]).reshape(24, -1)
    counts = np.stack([np.bincount(f, minlength=num * n_loc) for f in flat]).reshape(24, num, -1)
    pairs = counts * (counts - 1) / 2
    factor = stage_transmission(stage)
    if public_only:
        factor[:, : TYPE_COUNTS[HOME]] = 0.0
    return (pairs * factor[None]).sum(axis=(0, 2))
