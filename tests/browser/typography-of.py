#!/usr/bin/env python3
"""Checks saved pages with the rules of the shared typography checker (its HTML parser and
its RULES, loaded from the script unchanged), for the page states its crawl never reaches: the
answer to a POST (a form with its errors, a key just created), a notice after a redirect
(`?lancee=…`). Prints one line per problem and a summary; exits 1 if there is any.

    python3 typography-of.py ../../../shared/tools/check-typography.py 'label=page.html' …
"""
import runpy, sys

if len(sys.argv) < 3:
    sys.exit(__doc__)
checker = runpy.run_path(sys.argv[1])  # not as __main__: its crawl does not run
Page, RULES = checker["Page"], checker["RULES"]
problems = 0
for arg in sys.argv[2:]:
    label, _, file = arg.partition("=")
    with open(file, encoding="utf-8") as f:
        page = Page()
        page.feed(f.read())
    if page.lang != "fr":
        problems += 1
        print(f'  {label}: <html lang="{page.lang}"> instead of "fr"')
    # The same text, cut the same way, as the crawl reads it.
    for chunk in page.text:
        chunk = " ".join(chunk.split(" \n")) if "\n" in chunk else chunk
        for rule, why in RULES:
            for m in rule.finditer(chunk):
                problems += 1
                ctx = chunk[max(0, m.start() - 25): m.end() + 25].replace("\n", " ")
                print(f"  {label}: {why}: …{ctx}…")
print(f"typography: {len(sys.argv) - 2} page states, {problems} problems")
sys.exit(1 if problems else 0)
