"""Collects the demo encoder's training text into one JSON-lines file of {"source", "text"} documents.

Sources are npm packages already in node_modules and Debian packages (see docs/demo-encoder.md for the list,
licences and how to install them). Nothing here is committed: the text stays on the build machine. Missing
sources are skipped with a warning, so the script runs with whatever is installed. Python standard library only.

Usage: python3 gpu-worker/tools/demo-encoder/collect_corpus.py OUT.jsonl
"""
import glob
import gzip
import html
import json
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
NODE_MODULES = os.path.join(ROOT, 'node_modules')
# Documents are cut to about this many characters (~250 tokens) so that sources made of few long texts
# (speeches, chapters) count as many documents, like the paragraphs the product is used on.
DOC_CHARS = 1200


def squash(text):
    """One paragraph per line, single spaces inside lines."""
    paras = [re.sub(r'\s+', ' ', p).strip() for p in re.split(r'\n\s*\n', text)]
    return '\n'.join(p for p in paras if p)


def chunks(text, size=DOC_CHARS):
    """Groups whole paragraphs into documents of about `size` characters."""
    out, cur = [], ''
    # Paragraphs longer than a document (speeches without breaks) are cut at sentence ends.
    paras = [s for p in text.split('\n') for s in (re.split(r'(?<=[.!?])\s+', p) if len(p) > size else [p])]
    for p in paras:
        if cur and len(cur) + len(p) > size:
            out.append(cur)
            cur = ''
        cur = f'{cur}\n{p}' if cur else p
    if cur:
        out.append(cur)
    return out


def strip_html(raw):
    raw = re.sub(r'(?is)<(script|style|head|pre)[^>]*>.*?</\1>', ' ', raw)
    raw = re.sub(r'(?i)<br\s*/?>|</p>|</div>|</tr>|</li>|</h\d>|</dd>|</dt>', '\n\n', raw)
    raw = re.sub(r'(?s)<[^>]+>', ' ', raw)
    return html.unescape(raw)


def stdlib_dataset(name):
    data_dir = os.path.join(NODE_MODULES, '@stdlib', f'datasets-{name}', 'data')
    files = sorted(glob.glob(os.path.join(data_dir, '*.json')) + glob.glob(os.path.join(data_dir, '*', '*.json')))
    for f in files:
        with open(f, encoding='utf8') as fh:
            data = json.load(fh)
        items = data if isinstance(data, list) else [data]
        for d in items:
            if isinstance(d, dict) and isinstance(d.get('text'), str):
                yield d['text']


def email_body(raw):
    """A message as the product sees it (gpu-worker/src/corpus/spam-assassin.ts): the body after the header block,
    HTML and quoted replies kept; only quoted-printable soft breaks and base64 blobs are dropped."""
    parts = re.split(r'\r?\n\r?\n', raw, maxsplit=1)
    body = parts[1] if len(parts) > 1 else raw
    body = body.replace('\r\n', '\n').replace('=\n', '')
    body = re.sub(r'(?m)^[A-Za-z0-9+/=]{60,}$\n?', '', body)
    return body


def email_chunks(body, size=DOC_CHARS * 2):
    """Cuts a body into documents of about `size` characters at line ends, keeping its line breaks."""
    out, cur = [], ''
    for line in body.split('\n'):
        if cur and len(cur) + len(line) > size:
            out.append(cur)
            cur = ''
        cur = f'{cur}\n{line}' if cur else line
    if cur.strip():
        out.append(cur)
    return out


def sources():
    yield 'sotu', (c for t in stdlib_dataset('sotu') for c in chunks(squash(t)))
    yield 'moby-dick', (c for t in stdlib_dataset('moby-dick') for c in chunks(squash(t)))
    yield 'spam-assassin', (c for t in stdlib_dataset('spam-assassin') for c in email_chunks(email_body(t))[:3])
    yield 'wordnet', wordnet()
    yield 'kjv', kjv()
    yield 'jargon', jargon()
    yield 'devil', devil()
    yield 'fortunes', fortunes()
    yield 'python-docs', html_tree('/usr/share/doc/python3.11/html')
    yield 'postgresql-docs', html_tree('/usr/share/doc/postgresql-doc-15/html')


def wordnet():
    """One document per synset: its words, gloss and examples ("doctor, physician: a licensed medical ...")."""
    base = next((d for d in ['/usr/share/wordnet', '/usr/share/wordnet/dict'] if os.path.exists(os.path.join(d, 'data.noun'))), None)
    if base is None:
        raise FileNotFoundError('wordnet-base (data.noun)')
    for pos in ['noun', 'verb', 'adj', 'adv']:
        with open(os.path.join(base, f'data.{pos}'), encoding='latin-1') as fh:
            for line in fh:
                if line.startswith('  ') or '|' not in line:
                    continue
                head, gloss = line.split('|', 1)
                f = head.split()
                n = int(f[3], 16)
                words = [f[4 + 2 * i].replace('_', ' ') for i in range(n)]
                words = [re.sub(r'\(.*\)$', '', w) for w in words]
                yield f'{", ".join(words)}: {gloss.strip()}'


def kjv():
    out = subprocess.run(['bible', '-l100000', 'Gen1:1-Rev22:21'], capture_output=True, text=True, check=True).stdout
    verses = [re.sub(r'^\s*\d+\s+', '', l).strip() for l in out.split('\n') if re.match(r'^\s*\d+\s', l)]
    for i in range(0, len(verses), 8):
        yield ' '.join(verses[i:i + 8])


def jargon():
    with gzip.open('/usr/share/doc/jargon-text/jargon.txt.gz', 'rt', encoding='utf8', errors='replace') as fh:
        text = fh.read()
    text = re.sub(r'[│├┼┤─┌┐└┘┬┴]+', ' ', text)
    return iter(chunks(squash(text)))


def devil():
    with gzip.open('/usr/share/dictd/devil.dict.dz', 'rt', encoding='utf8', errors='replace') as fh:
        text = fh.read()
    return iter(chunks(squash(text), 600))


def fortunes():
    for f in sorted(glob.glob('/usr/share/games/fortunes/*')):
        if f.endswith(('.dat', '.u8')) or os.path.isdir(f) or os.path.basename(f) in ('art', 'ascii-art'):
            continue
        with open(f, encoding='utf8', errors='replace') as fh:
            for item in fh.read().split('\n%\n'):
                t = re.sub(r'\s+', ' ', item).strip()
                if len(t) > 40:
                    yield t


def html_tree(root):
    if not os.path.isdir(root):
        raise FileNotFoundError(root)
    for f in sorted(glob.glob(os.path.join(root, '**', '*.html'), recursive=True)):
        if '/_static/' in f or 'genindex' in f or '/search' in f:
            continue
        with open(f, encoding='utf8', errors='replace') as fh:
            text = squash(strip_html(fh.read()))
        # Drop lines that are mostly symbols (navigation, code residue).
        lines = [l for l in text.split('\n') if len(l) > 30 and sum(c.isalpha() or c == ' ' for c in l) > 0.8 * len(l)]
        yield from chunks('\n'.join(lines))


def main(out_path):
    counts = {}
    with open(out_path, 'w', encoding='utf8') as out:
        for name, docs in sources():
            n = chars = 0
            try:
                for text in docs:
                    text = text.strip()
                    if len(text) < 20:
                        continue
                    out.write(json.dumps({'source': name, 'text': text}, ensure_ascii=False) + '\n')
                    n += 1
                    chars += len(text)
            except (FileNotFoundError, subprocess.CalledProcessError) as e:
                print(f'skip {name}: {e}', file=sys.stderr)
            counts[name] = {'documents': n, 'chars': chars}
            print(f'{name}: {n} documents, {chars / 1e6:.1f} M characters', file=sys.stderr)
    json.dump(counts, open(out_path + '.counts.json', 'w'), indent=2)


if __name__ == '__main__':
    main(sys.argv[1])
