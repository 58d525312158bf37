"""Counts in how many training documents each of the given words occurs (lower-cased whole words).

The planted-concept check (npm run eval:correlations) must use words rare in the SAE's training text (under 100 of
its documents); this prints the counts that docs/demo-encoder.md records. Usage: python3 word_doc_counts.py DOCS.jsonl WORD...
"""
import json
import re
import sys

words = [w.lower() for w in sys.argv[2:]]
counts = dict.fromkeys(words, 0)
pattern = re.compile(r'[^\W_]+')
with open(sys.argv[1], encoding='utf8') as fh:
    for line in fh:
        present = set(pattern.findall(json.loads(line)['text'].lower()))
        for w in words:
            if w in present:
                counts[w] += 1
print(json.dumps(counts))
