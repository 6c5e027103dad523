"""UVA/Padova 2008 type-1-diabetes patient model (adult#001), batched over patients with numpy.

This is our own re-implementation of the 13-state ODE used by `simglucose` (Jinyu Xie, MIT
licence) and by the ORPO glucose environment (spec: specs/orpo.md §2.4). The PyPI package cannot
be installed beside gymnasium 1.x (spec §3), so the model lives here; its parameters are data,
copied from simglucose's `vpatient_params.csv` row `adult#001`.

Integration (why not scipy): the seed calls an adaptive solver once per simulated minute, about
0.01 s per minute, which makes RL at 1e5 steps per iteration impractical. Inputs (meal intake,
insulin rate, Dbar) are piecewise constant per minute, so we take one classical RK4 step per
minute for all patients at once. The fastest rate of the linear part is m1 + m30 = 0.39 /min, far
inside RK4's stability region at h = 1 min; `tests/envs/test_glucose.py` checks that a day with
meals and a bolus stays within 1e-3 mg/dL of a 1/16-minute RK4 integration (measured 2e-4).

State layout is (13, N): one row per compartment, one column per patient, so each compartment
is a contiguous vector. Units follow simglucose: glucose masses in mg/kg, insulin in pmol/kg,
stomach and gut contents in mg, meal intake in g/min, insulin delivery in U/min.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: adult#001 parameters (simglucose `vpatient_params.csv`, MIT). Only the ones the ODE reads.
ADULT_001: dict[str, float] = {
    "BW": 102.32,  # body weight, kg
    "Vg": 1.9152,  # glucose distribution volume, dL/kg
    "Vi": 0.054906,  # insulin distribution volume, L/kg
    "Ib": 100.25,  # basal plasma insulin, pmol/L
    "kabs": 0.08906,
    "kmax": 0.046122,
    "kmin": 0.0037927,
    "b": 0.70391,
    "d": 0.21057,
    "f": 0.9,
    "kp1": 4.73140582528,
    "kp2": 0.00469,
    "kp3": 0.01208,
    "Fsnc": 1.0,
    "ke1": 0.0005,
    "ke2": 339.0,
    "k1": 0.058138,
    "k2": 0.087114,
    "Vm0": 3.2667306607,
    "Vmx": 0.031319,
    "Km0": 253.52,
    "m1": 0.15446,
    "m2": 0.225027424083,
    "m4": 0.090010969633,
    "m30": 0.23169,
    "p2u": 0.027802,
    "ki": 0.0046374,
    "kd": 0.0152,
    "ka1": 0.0019,
    "ka2": 0.0078,
    "ksc": 0.0766,
    "u2ss": 1.2386244136,  # steady-state basal insulin, pmol/kg/min
}

#: Basal steady state (simglucose `x0_1..x0_13` for adult#001).
ADULT_001_X0 = np.array(
    [
        0.0,
        0.0,
        0.0,
        265.370112,
        162.457097269,
        5.5043265,
        0.0,
        100.25,
        100.25,
        3.20762505142,
        72.4341762342,
        141.153779328,
        265.370112,
    ]
)

#: Insulin delivery that holds the steady state: u2ss * BW / 6000 = 0.02112 U/min.
IDEAL_BASAL = ADULT_001["u2ss"] * ADULT_001["BW"] / 6000.0
EAT_RATE = 5.0  # g/min: the patient eats announced carbohydrate at most this fast (simglucose)


def derivative(x: np.ndarray, cho: np.ndarray, insulin: np.ndarray, dbar: np.ndarray) -> np.ndarray:
    """Time derivative of the UVA/Padova state for N patients.

    cho is the carbohydrate eaten this minute (g/min), insulin the delivery rate (U/min) and dbar
    the size of the meal being digested (mg), which shapes the gastric emptying rate kgut.
    Compartments flagged non-negative in simglucose (glucose, insulin, liver, subcutaneous) get a
    zero derivative once they hit zero, as in the reference, so masses never go negative.

    Shape: x (13, N), cho (N,), insulin (N,), dbar (N,) -> (13, N)
    """
    p = ADULT_001
    dx = np.empty_like(x)
    qsto = x[0] + x[1]
    safe_dbar = np.where(dbar > 0, dbar, 1.0)
    aa = 5.0 / (2.0 * safe_dbar * (1.0 - p["b"]))
    cc = 5.0 / (2.0 * safe_dbar * p["d"])
    kgut_meal = p["kmin"] + (p["kmax"] - p["kmin"]) / 2.0 * (
        np.tanh(aa * (qsto - p["b"] * safe_dbar)) - np.tanh(cc * (qsto - p["d"] * safe_dbar)) + 2.0
    )
    kgut = np.where(dbar > 0, kgut_meal, p["kmax"])
    dx[0] = -p["kmax"] * x[0] + cho * 1000.0
    dx[1] = p["kmax"] * x[0] - kgut * x[1]
    dx[2] = kgut * x[1] - p["kabs"] * x[2]

    rate_appearance = p["f"] * p["kabs"] * x[2] / p["BW"]
    egp = np.maximum(p["kp1"] - p["kp2"] * x[3] - p["kp3"] * x[8], 0.0)
    renal = np.where(x[3] > p["ke2"], p["ke1"] * (x[3] - p["ke2"]), 0.0)
    dx[3] = egp + rate_appearance - p["Fsnc"] - renal - p["k1"] * x[3] + p["k2"] * x[4]
    uptake = (p["Vm0"] + p["Vmx"] * x[6]) * x[4] / (p["Km0"] + x[4])
    dx[4] = -uptake + p["k1"] * x[3] - p["k2"] * x[4]

    dx[5] = -(p["m2"] + p["m4"]) * x[5] + p["m1"] * x[9] + p["ka1"] * x[10] + p["ka2"] * x[11]
    plasma_insulin = x[5] / p["Vi"]
    dx[6] = -p["p2u"] * x[6] + p["p2u"] * (plasma_insulin - p["Ib"])
    dx[7] = -p["ki"] * (x[7] - plasma_insulin)
    dx[8] = -p["ki"] * (x[8] - x[7])
    dx[9] = -(p["m1"] + p["m30"]) * x[9] + p["m2"] * x[5]
    dx[10] = insulin * 6000.0 / p["BW"] - (p["ka1"] + p["kd"]) * x[10]
    dx[11] = p["kd"] * x[10] - p["ka2"] * x[11]
    dx[12] = -p["ksc"] * x[12] + p["ksc"] * x[3]
    for row in (3, 4, 5, 9, 10, 11, 12):
        dx[row] *= x[row] >= 0
    return dx


def rk4_step(
    x: np.ndarray, cho: np.ndarray, insulin: np.ndarray, dbar: np.ndarray, dt: float = 1.0
) -> np.ndarray:
    """One classical Runge-Kutta step of length dt minutes with inputs held constant.

    Shape: x (13, N), cho/insulin/dbar (N,) -> (13, N)
    """
    k1 = derivative(x, cho, insulin, dbar)
    k2 = derivative(x + 0.5 * dt * k1, cho, insulin, dbar)
    k3 = derivative(x + 0.5 * dt * k2, cho, insulin, dbar)
    k4 = derivative(x + dt * k3, cho, insulin, dbar)
    return x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def subcutaneous_glucose(x: np.ndarray) -> np.ndarray:
    """Blood glucose as the seed reads it: subcutaneous glucose mass / Vg, in mg/dL.

    Shape: x (13, N) -> (N,)
    """
    return x[12] / ADULT_001["Vg"]


@dataclass
class Stomach:
    """Per-patient eating bookkeeping that simglucose keeps beside the ODE state.

    planned: announced carbohydrate not yet eaten (g); last_cho: what was eaten last minute (g/min);
    eating: inside a meal; last_qsto: stomach content when the meal started (mg); food_taken: g
    eaten since the meal started. Dbar = last_qsto + food_taken * 1000 (the PyPI unit fix) or
    + food_taken (the seed's bgp copy, g added to mg; `faithful_dbar_units=True`).
    """

    planned: np.ndarray
    last_cho: np.ndarray
    eating: np.ndarray
    last_qsto: np.ndarray
    food_taken: np.ndarray

    @classmethod
    def empty(cls, n: int) -> Stomach:
        zeros = np.zeros(n)
        return cls(zeros.copy(), zeros.copy(), np.zeros(n, bool), zeros.copy(), zeros.copy())

    def clear(self, rows: np.ndarray) -> None:
        """Reset the patients selected by the bool mask rows to an empty stomach."""
        for arr in (self.planned, self.last_cho, self.last_qsto, self.food_taken):
            arr[rows] = 0.0
        self.eating[rows] = False

    def eat(self, announced: np.ndarray, x: np.ndarray, faithful_dbar_units: bool) -> tuple:
        """Advance one minute: queue announced carbs, eat at most EAT_RATE, return (cho, dbar).

        Shape: announced (N,) g/min, x (13, N) -> cho (N,) g/min, dbar (N,) mg
        """
        self.planned += announced
        cho = np.minimum(EAT_RATE, self.planned)
        self.planned -= cho
        starts = (cho > 0) & (self.last_cho <= 0)
        self.last_qsto = np.where(starts, x[0] + x[1], self.last_qsto)
        self.food_taken = np.where(starts, 0.0, self.food_taken)
        self.eating |= starts
        self.food_taken = self.food_taken + np.where(self.eating, cho, 0.0)
        self.eating &= ~((cho <= 0) & (self.last_cho > 0))
        self.last_cho = cho
        unit = 1.0 if faithful_dbar_units else 1000.0
        return cho, self.last_qsto + self.food_taken * unit


# Meal scenario: the seed's RandomBalancedScenario with Harris-Benedict sizing (spec §2.4).
# Six slots a day (breakfast, snack, lunch, snack, dinner, snack).
MEAL_PROBABILITY = np.array([0.95, 0.3, 0.95, 0.3, 0.95, 0.3])
MEAL_TIME_MEAN_MIN = np.array([7.0, 9.5, 12.0, 15.0, 18.0, 21.5]) * 60.0
MEAL_TIME_SD_MIN = np.array([60.0, 30.0, 60.0, 30.0, 60.0, 30.0])
MEAL_TIME_LOW_MIN = np.array([5.0, 9.0, 10.0, 14.0, 16.0, 20.0]) * 60.0
MEAL_TIME_HIGH_MIN = np.array([9.0, 10.0, 14.0, 16.0, 20.0, 23.0]) * 60.0
MEAL_AMOUNT_MEAN_G = np.array([69.4, 9.5, 82.0, 9.5, 97.7, 9.5])
MEAL_AMOUNT_REL_SD = 0.15
MEAL_DURATION_MIN = 5
MINUTES_PER_DAY = 1440


def draw_day_meals(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One day's meals for one patient: start minute of day and grams per slot (0 g = skipped).

    Times are normal around the slot mean, truncated to the slot window by rejection, rounded to
    the minute; amounts are N(mu, 0.15 mu) rounded to whole grams and floored at 0.

    Shape: -> times (6,) int64, amounts (6,) float64
    """
    occurs = rng.random(6) < MEAL_PROBABILITY
    times = rng.normal(MEAL_TIME_MEAN_MIN, MEAL_TIME_SD_MIN)
    bad = (times < MEAL_TIME_LOW_MIN) | (times > MEAL_TIME_HIGH_MIN)
    while bad.any():
        times[bad] = rng.normal(MEAL_TIME_MEAN_MIN[bad], MEAL_TIME_SD_MIN[bad])
        bad = (times < MEAL_TIME_LOW_MIN) | (times > MEAL_TIME_HIGH_MIN)
    amounts = np.round(rng.normal(MEAL_AMOUNT_MEAN_G, MEAL_AMOUNT_REL_SD * MEAL_AMOUNT_MEAN_G))
    amounts = np.maximum(amounts, 0.0) * occurs
    return np.round(times).astype(np.int64), amounts


def announced_carbs(
    meal_times: np.ndarray, meal_amounts: np.ndarray, minute_of_day: np.ndarray
) -> np.ndarray:
    """Carbohydrate the scenario serves this minute: each meal spread evenly over 5 minutes.

    Shape: meal_times (N, 6), meal_amounts (N, 6), minute_of_day (N,) -> (N,) g/min
    """
    since = minute_of_day[:, None] - meal_times
    serving = (since >= 0) & (since < MEAL_DURATION_MIN)
    return (meal_amounts * serving).sum(axis=1) / MEAL_DURATION_MIN
