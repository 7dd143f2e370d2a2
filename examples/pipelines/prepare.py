"""Step `prepare`: the breast-cancer data set (bundled with scikit-learn, no
download) as a stratified train/test split in CSV files.

    prepare.py --out DIR --rows FILE [--sample N] [--seed S] [--test-size F]
               [--scheduled-time T]

Writes DIR/train.csv and DIR/test.csv (30 feature columns and `target`)
and the number of rows used to FILE. --sample N (0 = all 569 rows) keeps a
stratified sample of N rows first: the quick mode that
`lathe pipeline run --sample N` selects. The output is a pure function of
the arguments, so a rerun with the same data produces the same digests and
the steps downstream hit the cache.
"""
import argparse
import os

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from steplib import write_value

MIN_SAMPLE = 40  # below this a stratified split leaves too few rows of a class


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output directory (train.csv, test.csv)")
    p.add_argument("--rows", required=True, help="file receiving the number of rows used")
    p.add_argument("--sample", type=int, default=0, help="rows to keep, 0 = all")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--test-size", type=float, default=0.25)
    p.add_argument("--scheduled-time", default="", help="set by a schedule (RFC 3339)")
    args = p.parse_args()

    if args.scheduled_time:
        print(f"scheduled run for {args.scheduled_time}", flush=True)
    frame = load_breast_cancer(as_frame=True).frame  # 30 features + "target"
    if args.sample < 0 or (0 < args.sample < MIN_SAMPLE):
        raise SystemExit(f"--sample: {args.sample} is neither 0 (all rows) nor >= {MIN_SAMPLE}")
    if 0 < args.sample < len(frame):
        frame, _ = train_test_split(frame, train_size=args.sample, stratify=frame["target"],
                                    random_state=args.seed)
    if not 0 < args.test_size < 1:
        raise SystemExit(f"--test-size: {args.test_size} is not in (0, 1)")
    train, test = train_test_split(frame, test_size=args.test_size, stratify=frame["target"],
                                   random_state=args.seed)
    os.makedirs(args.out, exist_ok=True)
    # Sorted rows and fixed float formatting keep the files byte-identical
    # across reruns (the artifact digest feeds the downstream cache keys).
    train.sort_index().to_csv(os.path.join(args.out, "train.csv"), index=False, float_format="%.10g")
    test.sort_index().to_csv(os.path.join(args.out, "test.csv"), index=False, float_format="%.10g")
    write_value(args.rows, str(len(frame)))
    print(f"prepared {len(frame)} rows: {len(train)} train, {len(test)} test "
          f"(positive share {frame['target'].mean():.3f}) in {args.out}", flush=True)


if __name__ == "__main__":
    main()
