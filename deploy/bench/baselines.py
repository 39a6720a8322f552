"""Fixed inputs and reference-tool baselines for deploy/bench/engines.sh.

Subcommands (all paths under one output directory, OUT):
  generate OUT            write the cases: OUT/<engine>/<case>/input.png (+ mask.png, reference.png)
  inpaint OUT RUNS        OpenCV Telea (radius 3 and 5) on every inpaint case
  upscale OUT RUNS        OpenCV Lanczos4, `vips resize`, ImageMagick `convert` on every upscale case
  report RESULTS          the side-by-side table and the target verdicts, from the JSON lines

Every measurement is one JSON line with the same fields as the Rust benches print: engine, impl,
case, ms, core_ms (in-process work on decoded pixels, where the tool allows it), peak_rss_kib
(external tools only: a Python process's peak is mostly the interpreter), output_bytes, and the
PSNR (psnr_hole for inpaint, psnr for upscale). Timing is the median of RUNS runs.

To add an engine: write a generator in CASES, a baseline function in BASELINES, and its
comparisons in TARGETS; engines.sh calls the subcommands by name.
"""

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data

# Natural photos that ship inside scikit-image (no download), in RGB.
PHOTOS = ("astronaut", "coffee", "chelsea")


def save(path, rgb_or_grey):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = rgb_or_grey
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), image):
        sys.exit(f"cannot write {path}")


def read_rgb(path):
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        sys.exit(f"cannot read {path}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)


def masks(height, width):
    """Three hole shapes per photo, from a fixed seed: thin strokes, round blobs, one rectangle."""
    rng = np.random.default_rng(3)
    strokes = np.zeros((height, width), np.uint8)
    for _ in range(6):
        (x0, x1), (y0, y1) = rng.integers(0, width, 2), rng.integers(0, height, 2)
        cv2.line(strokes, (int(x0), int(y0)), (int(x1), int(y1)), 255, int(rng.integers(5, 10)))
    blobs = np.zeros((height, width), np.uint8)
    for _ in range(6):
        x, y = int(rng.integers(30, width - 30)), int(rng.integers(30, height - 30))
        cv2.circle(blobs, (x, y), int(rng.integers(6, 18)), 255, -1)
    rect = np.zeros((height, width), np.uint8)
    cv2.rectangle(rect, (width // 2 - 30, height // 2 - 20), (width // 2 + 29, height // 2 + 19), 255, -1)
    return {"strokes": strokes, "blobs": blobs, "rect": rect}


def generate_inpaint(out):
    for name in PHOTOS:
        photo = getattr(skimage.data, name)()
        for shape, mask in masks(*photo.shape[:2]).items():
            case = out / "inpaint" / f"{name}-{shape}"
            damaged = photo.copy()
            damaged[mask > 0] = 0  # no engine may read the hole; zeroing it proves none does
            save(case / "input.png", damaged)
            save(case / "mask.png", mask)
            save(case / "reference.png", photo)
    # Scale: a 4-megapixel image (the astronaut enlarged 4 times, so smoother than a real photo
    # of that size) under thick strokes covering about 7% of it.
    photo = cv2.resize(skimage.data.astronaut(), (2048, 2048), interpolation=cv2.INTER_CUBIC)
    mask = np.zeros(photo.shape[:2], np.uint8)
    rng = np.random.default_rng(5)
    for _ in range(16):
        (x0, x1), (y0, y1) = rng.integers(0, 2048, 2), rng.integers(0, 2048, 2)
        cv2.line(mask, (int(x0), int(y0)), (int(x1), int(y1)), 255, int(rng.integers(8, 30)))
    case = out / "inpaint" / "astronaut4mp-strokes"
    damaged = photo.copy()
    damaged[mask > 0] = 0
    save(case / "input.png", damaged)
    save(case / "mask.png", mask)
    save(case / "reference.png", photo)


def generate_upscale(out):
    # Quality cases: the photo shrunk by 4 with a box (area) filter, the photo as the reference.
    for name in PHOTOS:
        photo = getattr(skimage.data, name)()
        h, w = photo.shape[0] // 4 * 4, photo.shape[1] // 4 * 4
        photo = photo[:h, :w]
        case = out / "upscale" / f"{name}-x4"
        save(case / "input.png", cv2.resize(photo, (w // 4, h // 4), interpolation=cv2.INTER_AREA))
        save(case / "reference.png", photo)
    # Speed and memory cases, no reference: full-size images enlarged 4 times.
    save(out / "upscale" / "coffee-full-x4" / "input.png", skimage.data.coffee())
    save(out / "upscale" / "hubble-full-x4" / "input.png", skimage.data.hubble_deep_field())
    save(out / "upscale" / "logo-rgba-x4" / "input.png", skimage.data.logo())


CASES = {"inpaint": generate_inpaint, "upscale": generate_upscale}


def psnr(a, b, where=None):
    a, b = a.astype(np.float64), b.astype(np.float64)
    if where is not None:
        a, b = a[where], b[where]
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def median_ms(runs, fn):
    times = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def run_tool(runs, argv):
    """Median wall time of a command, and the largest peak RSS any run of it had.

    The peak comes from GNU time, not from this interpreter's wait4: a forked child's maximum
    RSS starts at its parent's, and this parent holds numpy and OpenCV (tens of MiB), whereas
    `time` is small."""
    times, peaks = [], []
    with tempfile.NamedTemporaryFile("r") as report:
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report.name, *argv], check=True,
                           stdout=subprocess.DEVNULL)
            times.append((time.perf_counter() - start) * 1000)
            report.seek(0)
            peaks.append(int(report.read().split()[-1]))  # KiB
    return statistics.median(times), max(peaks)


def cases(out, engine):
    return sorted(p for p in (out / engine).iterdir() if (p / "input.png").is_file())


def emit(**fields):
    print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in fields.items()}), flush=True)


def baseline_inpaint(out, runs):
    for case in cases(out, "inpaint"):
        raw = (case / "input.png").read_bytes(), (case / "mask.png").read_bytes()
        image = cv2.imdecode(np.frombuffer(raw[0], np.uint8), cv2.IMREAD_COLOR)
        mask = cv2.imdecode(np.frombuffer(raw[1], np.uint8), cv2.IMREAD_GRAYSCALE)
        hole = mask >= 128
        reference = read_rgb(case / "reference.png")
        for radius in (3, 5):
            core_ms, filled = median_ms(runs, lambda: cv2.inpaint(image, mask, radius, cv2.INPAINT_TELEA))

            def full():
                img = cv2.imdecode(np.frombuffer(raw[0], np.uint8), cv2.IMREAD_COLOR)
                msk = cv2.imdecode(np.frombuffer(raw[1], np.uint8), cv2.IMREAD_GRAYSCALE)
                return cv2.imencode(".png", cv2.inpaint(img, msk, radius, cv2.INPAINT_TELEA))[1]

            ms, encoded = median_ms(runs, full)
            cv2.imwrite(str(case / f"opencv-telea-r{radius}.png"), filled)
            emit(engine="inpaint", impl=f"opencv-telea-r{radius}", case=case.name, ms=ms, core_ms=core_ms,
                 peak_rss_kib=None, output_bytes=len(encoded),
                 psnr_hole=psnr(reference, cv2.cvtColor(filled, cv2.COLOR_BGR2RGB), hole))
        # The same PSNR, computed here, on the Rust engine's output: a cross-check of the two
        # implementations of the metric.
        if (case / "ours.png").is_file():
            emit(engine="inpaint", impl="ours-rechecked", case=case.name,
                 psnr_hole=psnr(reference, read_rgb(case / "ours.png"), hole))


def baseline_upscale(out, runs):
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases(out, "upscale"):
            source = case / "input.png"
            reference = read_rgb(case / "reference.png") if (case / "reference.png").is_file() else None
            raw = source.read_bytes()
            image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
            size = (image.shape[1] * 4, image.shape[0] * 4)
            core_ms, big = median_ms(runs, lambda: cv2.resize(image, size, interpolation=cv2.INTER_LANCZOS4))

            def full():
                img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
                return cv2.imencode(".png", cv2.resize(img, size, interpolation=cv2.INTER_LANCZOS4))[1]

            ms, encoded = median_ms(runs, full)
            results = {"opencv-lanczos4": (ms, core_ms, None, len(encoded), encoded)}
            tools = {
                "vips-lanczos3": ["vips", "resize", str(source), f"{tmp}/vips.png", "4", "--kernel", "lanczos3"],
                "imagemagick-lanczos": ["convert", str(source), "-filter", "Lanczos", "-resize", "400%",
                                        f"{tmp}/imagemagick-lanczos.png"],
            }
            for name, argv in tools.items():
                ms, peak = run_tool(runs, argv)
                written = Path(argv[-1] if name.startswith("imagemagick") else argv[3]).read_bytes()
                results[name] = (ms, None, peak, len(written), written)
            for name, (ms, core, peak, size_bytes, encoded) in results.items():
                decoded = cv2.imdecode(np.frombuffer(bytes(encoded), np.uint8), cv2.IMREAD_UNCHANGED)
                (case / f"{name}.png").write_bytes(bytes(encoded))
                score = None
                if reference is not None:
                    score = psnr(reference, cv2.cvtColor(decoded[:, :, :3], cv2.COLOR_BGR2RGB))
                emit(engine="upscale", impl=name, case=case.name, ms=ms, core_ms=core, peak_rss_kib=peak,
                     output_bytes=size_bytes, psnr=score)
            if reference is not None and (case / "ours.png").is_file():
                emit(engine="upscale", impl="ours-rechecked", case=case.name,
                     psnr=psnr(reference, read_rgb(case / "ours.png")))


BASELINES = {"inpaint": baseline_inpaint, "upscale": baseline_upscale}

# Per engine, the comparisons the report prints: (baseline impl, quality field, time field,
# the least PSNR difference ours - baseline that meets the target, the largest time ratio
# ours / baseline that does). A None threshold prints the figure without judging it.
TARGETS = {
    # Time: the fill alone on decoded pixels, both sides (`ms`, with PNG decode and encode, is
    # printed too: OpenCV's encoder and ours differ in speed and output size).
    "inpaint": [("opencv-telea-r3", "psnr_hole", "core_ms", 0.0, 2.0),
                ("opencv-telea-r5", "psnr_hole", "core_ms", 0.0, 2.0),
                ("opencv-telea-r5", None, "ms", None, None)],
    # Time: file to file. The command-line tools' figures include process start-up (tens of
    # milliseconds), which dominates the small cases; the full-size cases show the work.
    "upscale": [("imagemagick-lanczos", "psnr", "ms", -0.1, None),
                ("vips-lanczos3", "psnr", "ms", None, 1.0),
                ("opencv-lanczos4", "psnr", "core_ms", None, None)],
}


# Engines with no baseline tool, judged on their own figures: (case, field, least value).
OWN_TARGETS = {
    # A 5 s 720p clip from two images encodes faster than real time.
    "video": [("two_images_720p_5s", "realtime_factor", 1.0)],
    "generate": [],
}


def tag(engine):
    """Marks a bench's JSON lines (stdin) as ours for `engine`, for the report."""
    for line in sys.stdin:
        if line.strip():
            row = json.loads(line)
            row.update(engine=engine, impl="ours")
            print(json.dumps(row), flush=True)


def report(results_path):
    rows = [json.loads(line) for line in Path(results_path).read_text().splitlines() if line.strip()]
    by_key = {(r["engine"], r["impl"], r["case"]): r for r in rows}
    failures = 0
    for engine, targets in OWN_TARGETS.items():
        ours = [r for r in rows if r["engine"] == engine]
        if not ours:
            continue
        print(f"\n== {engine} ==")
        for row in ours:
            figures = {k: v for k, v in row.items() if k not in ("engine", "impl", "case", "fonts")}
            print(f"   {row['case']:<22} {json.dumps(figures)}")
        for case, field, least in targets:
            row = by_key.get((engine, "ours", case))
            value = row.get(field) if row else None
            met = value is not None and value > least
            failures += not met
            print(f"   => {case} {field} {value} (target > {least}): {'MET' if met else 'MISSED'}")
    for engine, comparisons in TARGETS.items():
        ours = [r for r in rows if r["engine"] == engine and r["impl"] == "ours"]
        if not ours:
            continue
        print(f"\n== {engine} ==")
        for baseline, quality, timing, min_gain, max_ratio in comparisons:
            print(f"-- ours vs {baseline}: {quality or 'no quality'} difference ours - theirs in dB"
                  f"{f' (target >= {min_gain:+})' if min_gain is not None else ''}; {timing} ratio ours / theirs"
                  f"{f' (target <= {max_ratio})' if max_ratio is not None else ''}")
            gains, ratios = [], []
            for mine in ours:
                theirs = by_key.get((engine, baseline, mine["case"]))
                if theirs is None:
                    continue
                cells = [f"{mine['case']:<22}"]
                if quality and mine.get(quality) is not None and theirs.get(quality) is not None:
                    gain = mine[quality] - theirs[quality]
                    gains.append(gain)
                    cells.append(f"{quality} {mine[quality]:6.2f} vs {theirs[quality]:6.2f} ({gain:+.2f})")
                    check = by_key.get((engine, "ours-rechecked", mine["case"]), {}).get(quality)
                    if check is not None and abs(check - mine[quality]) > 0.02:
                        cells.append(f"METRIC DISAGREES: python says {check:.2f}")
                        failures += 1
                if mine.get(timing) and theirs.get(timing):
                    ratio = mine[timing] / theirs[timing]
                    ratios.append(ratio)
                    cells.append(f"{timing} {mine[timing]:8.1f} vs {theirs[timing]:8.1f} (x{ratio:.2f})")
                rss = theirs.get("peak_rss_kib")
                cells.append(f"peak rss {mine['peak_rss_kib'] // 1024} vs {rss // 1024 if rss else '-'} MiB")
                print("   " + " | ".join(cells))
            verdicts = []
            if gains:
                verdict = "" if min_gain is None else ("MET " if min(gains) >= min_gain else "MISSED ")
                failures += verdict == "MISSED "
                verdicts.append(f"quality {verdict}(mean {statistics.mean(gains):+.2f} dB, worst {min(gains):+.2f} dB)")
            if ratios:
                verdict = "" if max_ratio is None else ("MET " if max(ratios) <= max_ratio else "MISSED ")
                failures += verdict == "MISSED "
                verdicts.append(f"time {verdict}(median x{statistics.median(ratios):.2f}, worst x{max(ratios):.2f})")
            print("   => " + "; ".join(verdicts))
    return 1 if failures else 0


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "generate":
        for generate in CASES.values():
            generate(Path(args[0]))
    elif command in BASELINES:
        BASELINES[command](Path(args[0]), int(args[1]))
    elif command == "tag":
        tag(args[0])
    elif command == "report":
        sys.exit(report(args[0]))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
