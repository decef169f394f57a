"""python try2.py MODEL key=value ... : tune with those TuneConfig fields, then StereoSet gender SS on select and test."""
import sys, time, json, ast
from lftf_interp.models.loading import load_model
from lftf_interp.tune import TuneConfig, tune
from lftf_interp.retain.stereoset import pair_material, evaluate_stereoset

kw = {}
for a in sys.argv[2:]:
    k, v = a.split("=", 1)
    try:
        kw[k] = ast.literal_eval(v)
    except Exception:
        kw[k] = v
m = load_model(sys.argv[1])
cfg = TuneConfig(**kw)
pairs = pair_material(cfg)
t0 = time.time()
res = tune(m, cfg, pairs=pairs)
print("train_s", time.time() - t0, "best", res.best_step, res.best_val, flush=True)
print(res.history[[c for c in res.history.columns if c.startswith(("val_", "loss"))]].dropna().tail(4).to_string())
out = {"args": sys.argv[1:], "best_step": res.best_step, "best_val": res.best_val}
for split in ("select", "test"):
    t, _ = evaluate_stereoset(m, ("gender",), n_boot=200, split=split)
    r = t[t.bias_type == "gender"].iloc[0]
    out[split] = {"ss": r.ss, "lms": r.lms, "ss_ci": r.ss_ci}
print("RESULT", json.dumps(out), flush=True)
