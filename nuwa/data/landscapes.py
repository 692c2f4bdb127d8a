"""Procedural landscapes: the suite's embedded offline data set (never call it LHQC).

A scene is sky (gradient, sun glow, horizontally stretched clouds), 2-4 fBm ridgelines drawn far
to near with aerial-perspective haze, and a textured ground plane or a lake that mirrors them.
Every noise field is periodic in x with period = image width, so any rendering tiles horizontally
and "infinite" panoramas exist; rows go sky -> ridges -> ground, so Up/Down outpainting must
invent different content than Left/Right.

Determinism: only `np.random.RandomState` (its stream is frozen by NEP 19), one stream per scene
component so the parameters never depend on image size. Noise is value noise on a random
lattice, interpolated with cubic B-splines written as interpolation matrices, so each octave is
two small matrix products (BLAS) instead of per-pixel gathers or FFTs. BLAS and numpy's SIMD
`exp` may differ by one float LSB across builds, so a fixture comparison on another machine
needs a +-1 tolerance after uint8 quantisation; on one machine the bytes are identical.

Scale: every feature size is a fraction of the image height, so a W x H rendering is the
H x H scene widened, and a panorama at the same height has the same look as a frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

DATASET_NAME = "procedural-landscapes-v1"

TIMES_OF_DAY = ("day", "sunset", "dusk")
CLOUD_COVERS = ("clear", "partly cloudy", "overcast")
RIDGE_KINDS = ("rolling hills", "rocky mountains", "snowy peaks")
GROUNDS = ("meadow", "desert", "lake")

_SKY = {  # zenith, horizon, sun glow, lit cloud, cloud shadow, scene light
    "day": ((0.18, 0.40, 0.78), (0.72, 0.84, 0.95), (1.0, 0.97, 0.86),
            (1.0, 1.0, 1.0), (0.70, 0.74, 0.80), 1.0),
    "sunset": ((0.22, 0.26, 0.52), (0.98, 0.64, 0.38), (1.0, 0.78, 0.42),
               (1.0, 0.74, 0.56), (0.48, 0.36, 0.46), 0.75),
    "dusk": ((0.05, 0.07, 0.20), (0.44, 0.31, 0.46), (0.80, 0.46, 0.42),
             (0.40, 0.33, 0.44), (0.17, 0.15, 0.24), 0.42),
}  # fmt: skip
_RIDGE_COLOUR = {
    "rolling hills": (0.24, 0.42, 0.19),
    "rocky mountains": (0.43, 0.39, 0.35),
    "snowy peaks": (0.34, 0.36, 0.41),
}
_GROUND_COLOUR = {  # base colour, second colour for large patches, texture contrast
    "meadow": ((0.30, 0.52, 0.18), (0.52, 0.58, 0.22), 0.22),
    "desert": ((0.82, 0.66, 0.42), (0.70, 0.50, 0.32), 0.12),
    "lake": ((0.10, 0.20, 0.26), (0.14, 0.26, 0.30), 0.10),
}
_NUMBER_WORDS = {2: "two", 3: "three", 4: "four"}
_SKY_WORDS = {"day": "blue", "sunset": "sunset", "dusk": "dusk"}
_GROUND_WORDS = {"meadow": "a grassy meadow", "desert": "a sandy desert", "lake": "a calm lake"}


@dataclass(frozen=True)
class SceneParams:
    """Everything the caption is made from, plus the geometry the renderer used.

    Fractions are of the image height (y, from the top) or width (x). Ridges are listed far to
    near: `ridge_depths` are their distances (the nearest ground row is at depth 1), and
    `ridge_tops` the mean height of each ridgeline.
    """

    time_of_day: str
    cloud_cover: str
    cloud_fraction: float
    n_ridges: int
    ridge_kind: str
    ground: str
    horizon: float
    sun_x: float
    sun_y: float
    haze: float
    ridge_depths: tuple[float, ...]
    ridge_tops: tuple[float, ...]


@dataclass(frozen=True)
class Landscape:
    """One rendered scene: `image` uint8 [H, W, 3], its parameters and its caption."""

    image: np.ndarray
    params: SceneParams
    caption: str


@dataclass(frozen=True)
class SceneLayers:
    """The scene before compositing, so a video can move each layer at its own speed.

    Rows [0, g) (g = `ground_row`) are seen above the ground line: `sky` [g, W, 3] and `clouds`
    [g, W, 4] (RGB + alpha). Each ridge (far to near) is `(top, rgba [g - top, W, 4])`, covering
    rows [top, g). Rows [g, H) are the ground plane: `ground` [H - g, W, 4] and `ground_depth`
    [H - g] (depth 1 at the bottom row). For a lake, `ground` is the water's own colour and
    opacity, drawn over a reflection of the rows above the waterline that wobbles sideways by
    `ripple` [H - g] px. Everything is float32 in [0, 1] and periodic in x.
    """

    sky: np.ndarray
    clouds: np.ndarray
    ridges: tuple[tuple[int, np.ndarray], ...]
    ground: np.ndarray
    ground_depth: np.ndarray
    ripple: np.ndarray | None

    @property
    def ground_row(self) -> int:
        return self.sky.shape[0]


# ---------------------------------------------------------------- scene parameters and captions


def sample_scene(seed: int) -> SceneParams:
    """Draw scene parameters from `seed` alone (independent of the image size)."""
    rs = np.random.RandomState([seed, 0])
    time_of_day = TIMES_OF_DAY[rs.randint(3)]
    cloud_cover = CLOUD_COVERS[rs.randint(3)]
    lo, hi = {"clear": (0.0, 0.06), "partly cloudy": (0.25, 0.5), "overcast": (0.8, 0.95)}[
        cloud_cover
    ]
    cloud_fraction = rs.uniform(lo, hi)
    n_ridges = int(rs.randint(2, 5))
    ridge_kind = RIDGE_KINDS[rs.randint(3)]
    ground = GROUNDS[rs.randint(3)]
    horizon = rs.uniform(0.62, 0.74)
    sun_x = rs.uniform()
    sun_y = horizon * {"day": rs.uniform(0.15, 0.45), "sunset": rs.uniform(0.55, 0.8),
                       "dusk": rs.uniform(0.95, 1.1)}[time_of_day]  # fmt: skip
    haze = rs.uniform(0.06, 0.14)
    far, near = rs.uniform(10.0, 16.0), rs.uniform(1.8, 2.6)
    depths = np.geomspace(far, near, n_ridges)
    tallness = 0.30 if ridge_kind != "rolling hills" else 0.17
    far_top = horizon - tallness * rs.uniform(0.85, 1.15)
    near_top = horizon - rs.uniform(0.08, 0.12)
    tops = np.linspace(far_top, near_top, n_ridges)
    return SceneParams(
        time_of_day=time_of_day,
        cloud_cover=cloud_cover,
        cloud_fraction=round(float(cloud_fraction), 4),
        n_ridges=n_ridges,
        ridge_kind=ridge_kind,
        ground=ground,
        horizon=round(float(horizon), 4),
        sun_x=round(float(sun_x), 4),
        sun_y=round(float(sun_y), 4),
        haze=round(float(haze), 4),
        ridge_depths=tuple(round(float(d), 3) for d in depths),
        ridge_tops=tuple(round(float(t), 4) for t in tops),
    )


def caption_for(params: SceneParams) -> str:
    """The caption is a pure function of the parameters, so text<->image is checkable offline.

    e.g. "a partly cloudy sunset sky over three ranges of rocky mountains above a calm lake".
    """
    article = "an" if params.cloud_cover[0] in "aeiou" else "a"
    return (
        f"{article} {params.cloud_cover} {_SKY_WORDS[params.time_of_day]} sky over "
        f"{_NUMBER_WORDS[params.n_ridges]} ranges of {params.ridge_kind} "
        f"above {_GROUND_WORDS[params.ground]}"
    )


def caption_attributes(caption: str) -> dict[str, str | int] | None:
    """The scene attributes a caption names (inverse of `caption_for`; a caption may be embedded
    in a longer sentence, e.g. a video's), or None when it is not a procedural caption.

    e.g. {"time_of_day": "sunset", "cloud_cover": "partly cloudy", "n_ridges": 3,
    "ridge_kind": "rocky mountains", "ground": "lake"}.
    """
    match = _CAPTION_PATTERN.search(caption)
    if match is None:
        return None
    words = match.groupdict()
    return {
        "time_of_day": next(k for k, v in _SKY_WORDS.items() if v == words["sky"]),
        "cloud_cover": words["cloud_cover"],
        "n_ridges": next(k for k, v in _NUMBER_WORDS.items() if v == words["count"]),
        "ridge_kind": words["ridge_kind"],
        "ground": next(k for k, v in _GROUND_WORDS.items() if v == words["ground"]),
    }


def _alternatives(words) -> str:
    return "|".join(re.escape(word) for word in words)


_CAPTION_PATTERN = re.compile(
    rf"an? (?P<cloud_cover>{_alternatives(CLOUD_COVERS)}) "
    rf"(?P<sky>{_alternatives(_SKY_WORDS.values())}) sky over "
    rf"(?P<count>{_alternatives(_NUMBER_WORDS.values())}) ranges of "
    rf"(?P<ridge_kind>{_alternatives(RIDGE_KINDS)}) above "
    rf"(?P<ground>{_alternatives(_GROUND_WORDS.values())})"
)


# ---------------------------------------------------------------- periodic value noise


def _bspline_taps(
    positions: np.ndarray, cells: int, periodic: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Lattice indices [4, N] and cubic B-spline weights [4, N] to sample at `positions` (cells).

    Periodic lattices wrap (x); open ones are padded with 1 cell before and 2 after (y).
    """
    base = np.floor(positions).astype(np.int64)
    t = (positions - base).astype(np.float32)
    weights = np.stack(
        [
            (1 - t) ** 3 / 6,
            (3 * t**3 - 6 * t**2 + 4) / 6,
            (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6,
            t**3 / 6,
        ]
    )
    taps = base[None, :] + np.arange(4)[:, None]
    return (taps - 1) % cells if periodic else taps, weights


def _noise_octave(
    rs: np.random.RandomState, y_positions: np.ndarray, x_cells: int, width: int
) -> np.ndarray:
    """[len(y_positions), width] value noise, periodic in x with `x_cells` cells per width.

    Separable B-spline interpolation as 4-tap gathers, not BLAS products: measured on the
    shared 2-core CPU, multithreaded BLAS on these thin matrices was 5x slower under load (0.33
    vs 0.06 s per 512x256 image), and elementwise float32 sums are the same on every build.
    """
    lo = int(np.floor(y_positions.min()))
    y_cells = int(np.floor(y_positions.max())) - lo + 1
    lattice = rs.standard_normal((y_cells + 3, x_cells)).astype(np.float32)
    y_taps, y_weights = _bspline_taps(y_positions - lo, y_cells, periodic=False)
    rows = sum(w[:, None] * lattice[i] for i, w in zip(y_taps, y_weights, strict=True))
    x_taps, x_weights = _bspline_taps(np.arange(width) * (x_cells / width), x_cells, periodic=True)
    return sum(rows[:, i] * w[None, :] for i, w in zip(x_taps, x_weights, strict=True))


def fbm2d(
    rs: np.random.RandomState,
    y_positions: np.ndarray,
    x_cells: int,
    width: int,
    octaves: int,
    gain: float = 0.5,
) -> np.ndarray:
    """[len(y_positions), width] fractal noise, zero mean and unit std, periodic in x.

    Octave o has 2**o times the base lattice density on both axes; octaves finer than 2 px per
    cell are dropped (they would only alias).
    """
    total = np.zeros((len(y_positions), width), np.float32)
    for o in range(octaves):
        cells = x_cells * 2**o
        if cells > width // 2:
            break
        total += gain**o * _noise_octave(rs, y_positions * 2**o, cells, width)
    return (total - total.mean()) / (total.std() + 1e-6)


def fbm1d(
    rs: np.random.RandomState, x_cells: int, width: int, octaves: int, gain: float
) -> np.ndarray:
    """[width] periodic fractal noise, zero mean and unit std."""
    return fbm2d(rs, np.zeros(1), x_cells, width, octaves, gain)[0]


def _smoothstep(lo: float | np.ndarray, hi: float | np.ndarray, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _cells(width: int, height: int, feature: float) -> int:
    """Lattice cells across `width` for features `feature` x height wide (at least 1)."""
    return max(1, round(width / (feature * height)))


# ---------------------------------------------------------------- layers


def _sky(p: SceneParams, width: int, height: int, ground_row: int) -> np.ndarray:
    zenith, horizon, glow = (np.asarray(c, np.float32) for c in _SKY[p.time_of_day][:3])
    y = np.arange(ground_row, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    t = (y / ground_row) ** 1.4
    sky = zenith * (1 - t[..., None]) + horizon * t[..., None]
    dx = np.abs(x - np.float32(p.sun_x * width))
    dx = np.minimum(dx, width - dx) / height  # periodic distance keeps the sky tileable
    d2 = dx**2 + ((y - np.float32(p.sun_y * height)) / height) ** 2
    light = 0.75 * np.exp(-d2 / 0.004) + 0.35 * np.exp(-d2 / 0.05)
    if p.cloud_cover != "overcast" and p.time_of_day != "dusk":
        light += 2.0 * _smoothstep(0.0011, 0.0008, d2)  # the sun's disk
    if p.cloud_cover == "overcast":
        sky = 0.35 * sky + 0.65 * sky.mean(-1, keepdims=True)
        light *= 0.35
    return np.clip(sky + light[..., None] * (glow - 0.5 * sky), 0, 1).astype(np.float32)


def _clouds(
    rs: np.random.RandomState, p: SceneParams, width: int, height: int, ground_row: int
) -> np.ndarray:
    lit, shadow = (np.asarray(c, np.float32) for c in _SKY[p.time_of_day][3:5])
    y = np.arange(ground_row, dtype=np.float64)
    # Perspective: cloud rows crowd together toward the horizon.
    depth = 1.0 / np.maximum(1.0 - y / (1.1 * ground_row), 0.08)
    noise = fbm2d(rs, depth * 2.5, _cells(width, height, 0.9), width, octaves=6, gain=0.55)
    fade = 1 - _smoothstep(0.55 * ground_row, 0.98 * ground_row, y.astype(np.float32))
    threshold = float(np.quantile(noise[: max(1, ground_row // 2) : 2, ::2], 1 - p.cloud_fraction))
    density = _smoothstep(threshold - 0.05, threshold + 0.7, noise) * fade[:, None]
    core = _smoothstep(threshold, threshold + 2.0, noise)[..., None]
    rgb = lit * (1 - core) + shadow * core
    return np.concatenate([rgb, (0.95 * density)[..., None]], -1).astype(np.float32)


def _ridges(
    rs: np.random.RandomState,
    p: SceneParams,
    width: int,
    height: int,
    ground_row: int,
    haze_colour: np.ndarray,
) -> list[tuple[int, np.ndarray]]:
    light = _SKY[p.time_of_day][5]
    base = np.asarray(_RIDGE_COLOUR[p.ridge_kind], np.float32)
    texture = fbm2d(rs, np.arange(ground_row) / height * 10, _cells(width, height, 0.1), width, 5)
    rugged = p.ridge_kind != "rolling hills"
    layers = []
    for k, (depth, top) in enumerate(zip(p.ridge_depths, p.ridge_tops, strict=True)):
        near = k / max(p.n_ridges - 1, 1)
        feature = (0.35 if rugged else 0.6) * (1 + near)
        profile = fbm1d(rs, _cells(width, height, feature), width, 7, 0.55 if rugged else 0.4)
        if rugged:  # ridged multifractal: sharp crests, rounded valleys
            profile = -np.abs(profile)
        profile = 2 * (profile - profile.min()) / (profile.max() - profile.min() + 1e-6) - 1
        amplitude = (0.07 if rugged else 0.035) * (1 + 0.5 * near) * height
        top_row = np.float32(top * height) - np.float32(amplitude) * profile
        first = int(np.clip(np.floor(top_row.min()), 0, ground_row - 1))
        y = np.arange(first, ground_row, dtype=np.float32)[:, None]
        alpha = np.clip(y - top_row[None, :] + 0.5, 0, 1)
        tex = np.roll(texture[first:], rs.randint(width), axis=1)
        tint = (1 + 0.1 * rs.uniform(-1, 1, 3)).astype(np.float32)
        shade = 1 + (0.22 if rugged else 0.1) * tex - 0.25 * near
        colour = (base * tint * np.float32(light)) * shade[..., None]
        if p.ridge_kind == "snowy peaks":
            snow_line = (
                np.float32(top * height - amplitude * 0.2) + np.float32(amplitude * 0.35) * tex
            )
            snow = _smoothstep(2.0, -2.0, y - snow_line)[..., None]
            colour = colour * (1 - snow) + np.float32(0.92 * light) * snow
        # Valley mist rising from each ridge's foot, then Koschmieder haze with depth.
        mist = 0.35 * _smoothstep(top * height, (top + 0.12) * height, y)
        fog = (np.float32(np.exp(-p.haze * depth)) * (1 - mist))[..., None]
        colour = colour * fog + haze_colour * (1 - fog)
        layers.append((first, np.concatenate([colour, alpha[..., None]], -1).astype(np.float32)))
    return layers


def _ground(
    rs: np.random.RandomState,
    p: SceneParams,
    width: int,
    height: int,
    ground_row: int,
    haze_colour: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Ground plane with a texture gradient; returns (rgba, row depth, lake ripple or None).

    Row y sees the plane at depth Z = (H - g - 1/2) / (y - g + 1/2) (g = ground row; Z = 1 at
    the bottom row). Perspective maps x to X = x Z / H, which is not periodic, so instead octave
    o has a fixed x-lattice matching depth 2**o and is blended in where Z is near 2**o (a mip-map
    in x); rows sample the lattice at Z itself, blurred as rows get foreshortened, so the texture
    stays tileable and grows finer toward the horizon.
    """
    light = _SKY[p.time_of_day][5]
    base, second, contrast = _GROUND_COLOUR[p.ground]
    rows = np.arange(ground_row, height, dtype=np.float64)
    z = (height - ground_row - 0.5) / (rows - ground_row + 0.5)
    feature = 0.07 if p.ground != "desert" else 0.12
    texture = np.zeros((len(rows), width), np.float32)
    for o in range(8):
        band = np.abs(np.log2(z) - o) < 1
        x_cells = round(width * 2**o / (height * feature))
        if x_cells > width // 3 or not band.any():
            break
        row_feature = max(feature, 3.0 * 4**o / (height - ground_row))  # anti-alias in y
        weight = np.maximum(0, 1 - np.abs(np.log2(z[band]) - o)).astype(np.float32)
        noise = _noise_octave(rs, z[band] / row_feature, x_cells, width)
        texture[band] += weight[:, None] * noise
    patches = fbm2d(rs, z / 0.6, _cells(width, height, 0.8), width, 3)
    mix = _smoothstep(-0.5, 0.8, patches)[..., None]
    base, second = np.asarray(base, np.float32), np.asarray(second, np.float32)
    colour = (base * (1 - mix) + second * mix) * np.float32(light)
    colour *= 1 + np.float32(contrast) * texture[..., None]
    fog = np.exp(-p.haze * 0.2 * z).astype(np.float32)[:, None, None]
    colour = colour * fog + haze_colour * (1 - fog)
    alpha = np.ones((len(rows), width, 1), np.float32)
    ripple = None
    if p.ground == "lake":  # the water's own colour; reflectance rises toward the horizon
        alpha *= (0.55 / (1 + 0.25 * (z - 1))).astype(np.float32)[:, None, None]
        ripple = (0.006 * height * fbm1d(rs, 40, len(rows), 1, 0.5) / z).astype(np.float32)
    rgba = np.concatenate([colour, alpha], -1).astype(np.float32)
    return rgba, z.astype(np.float32), ripple


def render_layers(seed: int, width: int, height: int) -> tuple[SceneParams, SceneLayers]:
    """Sample a scene from `seed` and render its layers at width x height (see SceneLayers)."""
    if not (isinstance(seed, int | np.integer) and 0 <= seed < 2**32):
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    if width < 16 or height < 16:
        raise ValueError(f"landscapes need width and height >= 16 px, got {width}x{height}")
    p = sample_scene(int(seed))
    ground_row = int(round(p.horizon * height))
    sky = _sky(p, width, height, ground_row)
    haze_colour = sky[-1].mean(0)
    # One stream per component, so e.g. the ridge count never changes the ground texture.
    clouds_rs, ridges_rs, ground_rs = (np.random.RandomState([int(seed), k]) for k in (1, 2, 3))
    ground, ground_depth, ripple = _ground(ground_rs, p, width, height, ground_row, haze_colour)
    layers = SceneLayers(
        sky=sky,
        clouds=_clouds(clouds_rs, p, width, height, ground_row),
        ridges=tuple(_ridges(ridges_rs, p, width, height, ground_row, haze_colour)),
        ground=ground,
        ground_depth=ground_depth,
        ripple=ripple,
    )
    return p, layers


def composite(
    layers: SceneLayers,
    cloud_shift: float = 0.0,
    ridge_shifts: tuple[float, ...] | None = None,
    ground_shifts: np.ndarray | None = None,
    width: int | None = None,
) -> np.ndarray:
    """Alpha-composite the layers into uint8 [H, width, 3], each shifted left by its own amount.

    Shifts are in px, periodic (the layers tile) and linearly interpolated when fractional;
    `ground_shifts` has one per ground row [H - g]. The output is the first `width` columns
    (default: all), so a video frame is a window onto a wider panorama. Zero shifts give the
    still image.
    """
    width = width or layers.sky.shape[1]
    ripple = layers.ripple
    # A lake mirrors the view above it with a sideways wobble, so render a margin around it.
    margin = 0 if ripple is None else int(np.ceil(np.abs(ripple).max())) + 1
    cols = width + 2 * margin
    upper = _window(layers.sky, 0.0, -margin, cols).copy()  # composited into in place
    _over(upper, _window(layers.clouds, cloud_shift, -margin, cols))
    ridge_shifts = ridge_shifts or (0.0,) * len(layers.ridges)
    for (top, rgba), shift in zip(layers.ridges, ridge_shifts, strict=True):
        _over(upper[top:], _window(rgba, shift, -margin, cols))
    if ground_shifts is None:
        ground_shifts = np.zeros(len(layers.ground_depth), np.float32)
    lower = _window_rows(layers.ground, ground_shifts, 0, width)
    if ripple is not None:
        g = layers.ground_row
        mirror_rows = np.clip(2 * g - 1 - np.arange(g, g + len(lower)), 0, g - 1)
        water = lower
        lower = _window_rows(upper[mirror_rows], ripple, margin, width) * np.float32(0.85)
        _over(lower, water)
    image = np.concatenate([upper[:, margin : margin + width], lower[..., :3]], 0)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def _over(below: np.ndarray, above: np.ndarray) -> None:
    """In place: RGB `below` [..., 3] <- RGBA `above` [..., 4] composited over it."""
    change = above[..., :3] - below[..., :3]
    change *= above[..., 3:]
    below[..., :3] += change


def _window(image: np.ndarray, shift: float, start: int, cols: int) -> np.ndarray:
    """Columns [start, start + cols) of `image` [rows, W, C] shifted left by `shift` px.

    Periodic in x; fractional shifts interpolate linearly between neighbouring columns.
    """
    if shift == 0 and start == 0 and cols == image.shape[1]:
        return image
    whole = int(np.floor(shift))
    frac = np.float32(shift - whole)
    idx = (start + whole + np.arange(cols)) % image.shape[1]
    window = image[:, idx]
    if frac:
        window = window * (1 - frac) + image[:, (idx + 1) % image.shape[1]] * frac
    return window


def _window_rows(image: np.ndarray, shifts: np.ndarray, start: int, cols: int) -> np.ndarray:
    """As `_window`, with one shift per row (`shifts` [rows])."""
    if not shifts.any() and start == 0 and cols == image.shape[1]:
        return image
    whole = np.floor(shifts).astype(np.int64)
    frac = (shifts - whole).astype(np.float32)[:, None, None]
    idx = (start + whole[:, None] + np.arange(cols)[None, :]) % image.shape[1]
    rows = np.arange(image.shape[0])[:, None]
    window = image[rows, idx]
    if frac.any():
        window = window * (1 - frac) + image[rows, (idx + 1) % image.shape[1]] * frac
    return window


def render_landscape(seed: int, width: int = 1024, height: int = 1024) -> Landscape:
    """Render the scene for `seed` as uint8 [height, width, 3], horizontally tileable."""
    params, layers = render_layers(seed, width, height)
    return Landscape(image=composite(layers), params=params, caption=caption_for(params))
