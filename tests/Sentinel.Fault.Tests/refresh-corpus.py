#!/usr/bin/env python3
"""Writes the config fuzzer's seed corpus (corpus/*.yaml): the shipped config, its includes, and every YAML block
of README.md and docs/. Run it after changing a shipped or documented config, and check the result in."""
import glob, os, re

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(out, exist_ok=True)
for old in glob.glob(os.path.join(out, "*.yaml")):
    os.remove(old)

def save(name, text):
    with open(os.path.join(out, name), "w", encoding="utf-8") as f:
        f.write(text)

save("config-sentinel.yaml", open(os.path.join(root, "config", "sentinel.yaml"), encoding="utf-8").read())
for f in sorted(glob.glob(os.path.join(root, "config", "rules.d", "*.yaml"))):
    save("config-rules.d-" + os.path.basename(f), open(f, encoding="utf-8").read())
docs = sorted(glob.glob(os.path.join(root, "docs", "*.md")) + glob.glob(os.path.join(root, "docs", "plugins", "*.md"))) + [os.path.join(root, "README.md")]
for f in docs:
    text = open(f, encoding="utf-8").read()
    for i, m in enumerate(re.finditer(r"^```ya?ml\n(.*?)^```", text, re.S | re.M)):
        save(f"doc-{os.path.basename(f)[:-3]}-{i + 1}.yaml", m.group(1))
print(f"{len(glob.glob(os.path.join(out, '*.yaml')))} seeds in {os.path.relpath(out, root)}")
