#!/usr/bin/env python3
"""SQLite query-plan audit of every SQL statement in src/store/*.c.

Finds statements whose plan scans a whole table (or sorts or builds an
automatic index) so that their cost grows with the history a long-running
service accumulates. By default a report: it always exits 0.

  scripts/sql-plan-audit.py [--root DIR] [--scale F] [--all] [--keep-db PATH]
  scripts/sql-plan-audit.py --check [--allow FILE] [--root DIR]

--check (run by `make test`, scripts/run-tests.sh) exits 1, printing each
offending statement's file:line, C function and plan line, when a statement
has a SCAN of a table that grows with history (also `SCAN x USING [COVERING]
INDEX`; not a scan of a partial index, nor a LIMIT read with no WHERE and no
sort) or an AUTOMATIC index on one, or cannot be extracted or explained on
SQLite -- unless its C function is in scripts/sql-plan-allow.txt
(`file.c function  # reason`, one a line, the reason required; an optional
third field `table[,table]` allows only scans of those tables). It also
fails on a malformed entry and on a stale one (a function with no SQL in that
file); an entry that allows nothing on this SQLite is only noted. It builds
the database at --scale 0.05: with no ANALYZE, SQLite's plans do not depend on
the rows (checked: the same plans at scales 1, 0.05 and 0.01); the rows are
random.Random(21), so runs are reproducible.

1. Extraction. The C files are run through a small C preprocessor (object-
   and function-like macros, # stringification, __VA_ARGS__, #undef) fed
   with the #defines of src/store/*.h and of the file itself, in order.
   Every run of adjacent string literals that starts with an SQL keyword is
   a statement site, classified:
     - the first of a two-element initializer {sqlite, pg} (oms_sql, as
       written directly or through OMS_SQL_BOTH / OMS_SQL_WITH_NOW / any
       macro that expands to one): the SQLite text; the second is the
       PostgreSQL text (counted, not explained);
     - a string named *_pg / after `pg ? ... :`: PostgreSQL only;
     - a format string given to snprintf & co. that has conversions or
       whose result is appended to: composed at run time, reported as not
       extracted (the audit filter query is synthesized below instead);
     - anything else: the same text on both backends.
   An upper-case identifier left next to a literal after expansion (a macro
   this tool could not resolve) is reported, and that statement skipped.
2. A fresh database: src/store/migrations/*.sqlite.sql in order, the
   idempotent DDL the C code runs itself, then synthetic history rows
   (commits with parent chains and merges, changes, issues, trees, audit
   events and chain, proposals and reviews, events and deliveries, lock
   history, search documents, ...). No ANALYZE (production never runs it).
3. EXPLAIN QUERY PLAN of each statement ($N -> ?N, bound to NULL); prints
   SCAN of a real table (CTEs, subquery aliases, virtual tables and
   constant rows are in-memory or indexed and skipped), AUTOMATIC indexes
   and temp B-trees, with the statement's file:line and C function.
"""
import argparse
import hashlib
import json
import os
import random
import re
import sqlite3
import sys
import tempfile

# ---------------------------------------------------------------- tokenizer

PUNCTS = ["...", "<<=", ">>=", "->", "++", "--", "<=", ">=", "==", "!=", "&&", "||", "+=", "-=", "*=", "/=",
          "%=", "&=", "|=", "^=", "<<", ">>", "##"]
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b",
           "f": "\f", "v": "\v", "?": "?"}


class Tok:
    __slots__ = ("kind", "value", "text", "line", "hide")

    def __init__(self, kind, value, text, line, hide=frozenset()):
        self.kind, self.value, self.text, self.line, self.hide = kind, value, text, line, hide

    def copy(self, line=None, hide=None):
        return Tok(self.kind, self.value, self.text, self.line if line is None else line,
                   self.hide if hide is None else hide)

    def __repr__(self):
        return "%s:%r@%d" % (self.kind, self.value, self.line)


def decode_c_string(body):
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt == "x":
            m = re.match(r"[0-9a-fA-F]+", body[i + 2:])
            out.append(chr(int(m.group(0), 16)))
            i += 2 + len(m.group(0))
        elif nxt in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1:])
            out.append(chr(int(m.group(0), 8)))
            i += 1 + len(m.group(0))
        else:
            out.append(ESCAPES.get(nxt, nxt))
            i += 2
    return "".join(out)


def tokenize(src, first_line=1, directives=True):
    """C tokens; a preprocessor directive is one token of kind 'pp' (its
    logical line, continuations joined). Comments are dropped. A macro body
    is tokenized with directives=False (its '#' is stringification)."""
    toks, i, line, n = [], 0, first_line, len(src)
    at_line_start = directives
    while i < n:
        ch = src[i]
        if ch == "\n":
            line += 1
            i += 1
            at_line_start = directives
            continue
        if ch in " \t\r\f\v":
            i += 1
            continue
        if ch == "\\" and src.startswith("\\\n", i):
            i += 2
            line += 1
            continue
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            line += src.count("\n", i, j)
            i = j
            continue
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
            continue
        if ch == "#" and at_line_start:
            start_line, j, buf = line, i + 1, []
            while j < n:
                if src.startswith("\\\n", j):
                    j += 2
                    line += 1
                    buf.append(" ")
                    continue
                if src.startswith("/*", j):
                    k = src.find("*/", j + 2)
                    k = n if k < 0 else k + 2
                    line += src.count("\n", j, k)
                    buf.append(" ")
                    j = k
                    continue
                if src.startswith("//", j):
                    while j < n and src[j] != "\n":
                        j += 1
                    continue
                if src[j] == "\n":
                    break
                if src[j] in "\"'":
                    q, k = src[j], j + 1
                    while k < n and src[k] != q:
                        k += 2 if src[k] == "\\" else 1
                    buf.append(src[j:k + 1])
                    j = k + 1
                    continue
                buf.append(src[j])
                j += 1
            toks.append(Tok("pp", "".join(buf).strip(), "", start_line))
            i = j
            continue
        at_line_start = False
        m = re.match(r'(?:u8|[uUL])?"', src[i:i + 3])
        if m:
            j = i + len(m.group(0))
            while j < n and src[j] != '"':
                if src[j] == "\\":
                    j += 1
                if src[j] == "\n":
                    line += 1
                j += 1
            raw = src[i:j + 1]
            toks.append(Tok("str", decode_c_string(src[i + len(m.group(0)):j]), raw, line))
            i = j + 1
            continue
        if ch == "'":
            j = i + 1
            while j < n and src[j] != "'":
                j += 2 if src[j] == "\\" else 1
            toks.append(Tok("char", src[i:j + 1], src[i:j + 1], line))
            i = j + 1
            continue
        m = re.match(r"[A-Za-z_][A-Za-z_0-9]*", src[i:i + 256])
        if m:
            toks.append(Tok("ident", m.group(0), m.group(0), line))
            i += len(m.group(0))
            continue
        m = re.match(r"\.?[0-9](?:[eEpP][+-]|[0-9A-Za-z_.])*", src[i:i + 256])
        if m:
            toks.append(Tok("num", m.group(0), m.group(0), line))
            i += len(m.group(0))
            continue
        for p in PUNCTS:
            if src.startswith(p, i):
                toks.append(Tok("punct", p, p, line))
                i += len(p)
                break
        else:
            toks.append(Tok("punct", ch, ch, line))
            i += 1
    return toks


# ---------------------------------------------------------------- macros


class Macro:
    def __init__(self, name, params, variadic, body):
        self.name, self.params, self.variadic, self.body = name, params, variadic, body


def apply_directive(text, macros):
    m = re.match(r"(\w+)\s*(.*)$", text, re.S)
    if not m:
        return
    kw, rest = m.group(1), m.group(2)
    if kw == "undef":
        macros.pop(rest.strip(), None)
        return
    if kw != "define":
        return
    m = re.match(r"([A-Za-z_]\w*)(\()?", rest)
    name = m.group(1)
    params, variadic = None, False
    body = rest[m.end():]
    if m.group(2):  # function-like: '(' right after the name
        close = body.index(")")
        plist = [p.strip() for p in body[:close].split(",") if p.strip()]
        if plist and plist[-1] == "...":
            variadic = True
            plist[-1] = "__VA_ARGS__"
        params = plist
        body = body[close + 1:]
    macros[name] = Macro(name, params, variadic, tokenize(body, directives=False))


def split_args(toks, start):
    """toks[start] is '('. Returns (args, index after ')') or None."""
    depth, args, cur, i = 0, [], [], start
    while i < len(toks):
        t = toks[i]
        if t.kind == "punct" and t.value in "([{":
            depth += 1
            if depth > 1:
                cur.append(t)
        elif t.kind == "punct" and t.value in ")]}":
            depth -= 1
            if depth == 0:
                args.append(cur)
                return args, i + 1
            cur.append(t)
        elif t.kind == "punct" and t.value == "," and depth == 1:
            args.append(cur)
            cur = []
        else:
            cur.append(t)
        i += 1
    return None


def stringify(arg):
    text = " ".join(t.text for t in arg)
    return Tok("str", text, '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"'), arg[0].line if arg else 0)


def expand(toks, macros):
    toks = list(toks)
    out, i = [], 0
    while i < len(toks):
        t = toks[i]
        m = macros.get(t.value) if t.kind == "ident" else None
        if m is None or t.value in t.hide:
            out.append(t)
            i += 1
            continue
        hide = t.hide | {t.value}
        if m.params is None:
            body = [b.copy(line=t.line, hide=b.hide | hide) for b in m.body]
            toks[i:i + 1] = body
            continue
        if i + 1 >= len(toks) or toks[i + 1].value != "(":
            out.append(t)
            i += 1
            continue
        parsed = split_args(toks, i + 1)
        if parsed is None:
            out.append(t)
            i += 1
            continue
        args, end = parsed
        if args == [[]] and not m.params:
            args = []
        named = {}
        for k, p in enumerate(m.params):
            if p == "__VA_ARGS__":
                rest = []
                for j, a in enumerate(args[k:]):
                    if j:
                        rest.append(Tok("punct", ",", ",", t.line))
                    rest.extend(a)
                named[p] = rest
            else:
                named[p] = args[k] if k < len(args) else []
        body, b = [], m.body
        j = 0
        while j < len(b):
            bt = b[j]
            if bt.value == "#" and bt.kind == "punct" and j + 1 < len(b) and b[j + 1].value in named:
                body.append(stringify(named[b[j + 1].value]).copy(line=t.line, hide=hide))
                j += 2
                continue
            if bt.kind == "ident" and bt.value in named:
                body.extend(x.copy(hide=x.hide | hide) for x in expand(named[bt.value], macros))
            else:
                body.append(bt.copy(line=t.line, hide=bt.hide | hide))
            j += 1
        toks[i:end] = body
    return out


def preprocess(path, base_macros):
    """The file's tokens with macros expanded (directives applied in order)."""
    macros = dict(base_macros)
    with open(path, encoding="utf-8") as f:
        raw = tokenize(f.read())
    out, seg = [], []
    for t in raw:
        if t.kind == "pp":
            out.extend(expand(seg, macros))
            seg = []
            apply_directive(t.value, macros)
        else:
            seg.append(t)
    out.extend(expand(seg, macros))
    return out


def header_macros(store_dir):
    macros = {}
    for name in sorted(os.listdir(store_dir)):
        if name.endswith(".h"):
            with open(os.path.join(store_dir, name), encoding="utf-8") as f:
                for t in tokenize(f.read()):
                    if t.kind == "pp":
                        apply_directive(t.value, macros)
    return macros


# ---------------------------------------------------------------- extraction

SQL_START = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|DROP|ALTER|PRAGMA|BEGIN|COMMIT|ROLLBACK|"
                       r"SAVEPOINT|RELEASE|SET|VACUUM|ANALYZE|REPLACE|VALUES|EXPLAIN)\b")
PRINTF = {"snprintf", "sprintf", "vsnprintf", "vsprintf", "printf", "fprintf", "sql_put", "oms_err_set",
          "asprintf"}
CONVERSION = re.compile(r"%(?!%)[-+ #0-9.*]*(?:hh|h|ll|l|z|j|t|L)?[diouxXeEfgGcspn]")
NOT_SQL_CALLS = {"strcmp", "strncmp", "strcasecmp", "strncasecmp", "strstr", "memcmp"}
PG_MARKERS = re.compile(r"::|\bpg_|\bnextval\(|\bsetval\(|\bset_config\(|\bFOR (?:UPDATE|SHARE)\b|SKIP LOCKED|"
                        r"json_array_elements|json_populate_recordset|json_to_recordset|to_tsvector|tsquery|"
                        r"\bILIKE\b|generate_series|get_byte|\bencode\(|\bdecode\(|clock_timestamp|txid_current|"
                        r"SET TRANSACTION|\bLATERAL\b|\bGREATEST\(|current_schema|lock_fencing_seq", re.I)


class Site:
    def __init__(self, file, line, func, sql, variant, note=""):
        self.file, self.line, self.func, self.sql, self.variant, self.note = file, line, func, sql, variant, note


def enclosing_map(toks):
    enc, stack, match = [None] * len(toks), [], {}
    for i, t in enumerate(toks):
        enc[i] = stack[-1] if stack else None
        if t.kind == "punct" and t.value in "([{":
            stack.append(i)
        elif t.kind == "punct" and t.value in ")]}":
            if stack:
                match[stack.pop()] = i
    return enc, match


def group_elements(toks, open_i, close_i):
    """[(start, end)) of each top-level element of the bracket group."""
    elems, depth, start = [], 0, open_i + 1
    for i in range(open_i + 1, close_i):
        t = toks[i]
        if t.kind == "punct" and t.value in "([{":
            depth += 1
        elif t.kind == "punct" and t.value in ")]}":
            depth -= 1
        elif t.kind == "punct" and t.value == "," and depth == 0:
            elems.append((start, i))
            start = i + 1
    elems.append((start, close_i))
    return [e for e in elems if e[1] > e[0]]


def is_run(toks, a, b):
    return b > a and all(toks[k].kind == "str" for k in range(a, b))


def run_text(toks, a, b):
    return "".join(toks[k].value for k in range(a, b))


def function_names(toks):
    """For each token, the file-scope declaration (function or variable) it
    belongs to."""
    names, depth, paren, cand, current = [None] * len(toks), 0, 0, None, None
    for i, t in enumerate(toks):
        v = t.value if t.kind == "punct" else None
        if v == "{":
            if depth == 0:
                current = cand
            depth += 1
        elif v == "}":
            depth -= 1
        elif v == "(":
            if depth == 0 and paren == 0 and i and toks[i - 1].kind == "ident":
                cand = toks[i - 1].value
            paren += 1
        elif v == ")":
            paren -= 1
        elif v in ("[", "=") and depth == 0 and paren == 0 and i and toks[i - 1].kind == "ident":
            cand = toks[i - 1].value
        names[i] = current if depth > 0 else cand
    return names


def var_name_before(toks, i):
    """The name assigned by `NAME = ` / `NAME[] = ` just before index i."""
    j = i - 1
    if j < 0 or toks[j].value != "=":
        return None
    j -= 1
    if j >= 0 and toks[j].value == "]":
        while j >= 0 and toks[j].value != "[":
            j -= 1
        j -= 1
    return toks[j].value if j >= 0 and toks[j].kind == "ident" else None


def mentions_pg(name):
    return bool(name) and bool(re.search(r"(^|_)pg(_|$)|PG", name))


def ternary_condition(toks, q_index):
    """Tokens of the condition before the '?' at q_index (back to an
    opening bracket, comma, '=', ';' or 'return')."""
    j, depth, cond = q_index - 1, 0, []
    while j >= 0:
        t = toks[j]
        if t.value in ")]}":
            depth += 1
        elif t.value in "([{":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and (t.value in (",", ";", "=", "return", "?", ":")):
            break
        cond.append(t)
        j -= 1
    return cond


def find_question(toks, colon_index):
    depth, j = 0, colon_index - 1
    while j >= 0:
        v = toks[j].value
        if v in ")]}":
            depth += 1
        elif v in "([{":
            if depth == 0:
                return None
            depth -= 1
        elif v == "?" and depth == 0:
            return j
        elif v in (";", ",") and depth == 0:
            return None
        j -= 1
    return None


def extract(path, rel, base_macros):
    """(sites, problems): problems are (rel, line, func, reason, text)."""
    toks = preprocess(path, base_macros)
    enc, match = enclosing_map(toks)
    funcs = function_names(toks)
    sites, problems = [], []
    i = 0
    while i < len(toks):
        if toks[i].kind != "str":
            i += 1
            continue
        a = i
        while i < len(toks) and toks[i].kind == "str":
            i += 1
        b = i
        text = run_text(toks, a, b)
        # a macro left unexpanded next to the literals
        neigh = [toks[k] for k in (a - 1, b) if 0 <= k < len(toks)]
        unresolved = [t.value for t in neigh if t.kind == "ident" and re.fullmatch(r"[A-Z][A-Z0-9_]{2,}", t.value)
                      and t.value not in ("NULL",)]
        if not SQL_START.match(text):
            if unresolved and re.search(r"\b(SELECT|FROM|WHERE|INSERT|UPDATE|DELETE)\b", text):
                problems.append((rel, toks[a].line, funcs[a], "unresolved macro %s next to SQL text"
                                 % ", ".join(unresolved), text))
            continue
        line, func = toks[a].line, funcs[a]
        if unresolved:
            problems.append((rel, line, func, "unresolved macro %s next to SQL text" % ", ".join(unresolved), text))
            continue
        variant, note = "both", ""
        if rel.endswith("/db_pg.c"):
            variant, note = "pg", "the PostgreSQL driver"
        # the element this run is: step out of grouping parentheses, as in
        # OMS_SQL_BOTH(text) -> {(text), (text)}
        ea, eb, o = a, b, enc[a]
        while (o is not None and toks[o].value == "(" and match.get(o) == eb and
               (o == 0 or toks[o - 1].kind != "ident")):
            ea, eb, o = o, match[o] + 1, enc[o]
        if variant == "pg":
            pass
        elif o is not None and toks[o].value == "{":
            elems = group_elements(toks, o, match.get(o, len(toks)))
            if len(elems) == 2 and (ea, eb) in elems:
                other = elems[1] if elems[0] == (ea, eb) else elems[0]
                oa, ob = other
                while (ob - oa > 2 and toks[oa].value == "(" and match.get(oa) == ob - 1):
                    oa, ob = oa + 1, ob - 1
                other_sql = is_run(toks, oa, ob) and SQL_START.match(run_text(toks, oa, ob))
                other_null = ob - oa == 1 and toks[oa].value == "NULL"
                if elems[0] == (ea, eb) and (other_sql or other_null):
                    variant = "sqlite" if other_sql and run_text(toks, oa, ob) != text else "both"
                elif elems[1] == (ea, eb) and other_sql:
                    variant = "pg" if run_text(toks, oa, ob) != text else "pg-dup"
        elif o is not None and toks[o].value == "(" and o > 0 and toks[o - 1].kind == "ident":
            callee = toks[o - 1].value
            elems = group_elements(toks, o, match.get(o, len(toks)))
            pos = elems.index((a, b)) if (a, b) in elems else -1
            if callee in NOT_SQL_CALLS:
                continue
            if callee == "oms_lock_sql" and pos in (1, 2):
                variant = "sqlite" if pos == 1 else "pg"
            elif callee in PRINTF:
                before = [x.value for x in toks[max(0, o - 5):o - 1]]
                appended = (before[-1:] in (["="], ["+="]) or
                            (before[-1:] == [")"] and len(before) >= 4 and before[-3] == "(" and before[-4] in ("=", "+=")))
                if CONVERSION.search(text) or appended:
                    problems.append((rel, line, func, "composed at run time (%s format%s)"
                                     % (callee, ", appended to" if appended else ""), text))
                    continue
        prev = toks[a - 1] if a else None
        if variant == "both":
            name = var_name_before(toks, a)
            if mentions_pg(name):
                variant, note = "pg", "named %s" % name
            elif name and "sqlite" in name.lower():
                variant = "sqlite"
            elif prev is not None and prev.value == "?":
                if any(mentions_pg(t.value) for t in ternary_condition(toks, a - 1) if t.kind == "ident"):
                    variant, note = "pg", "the pg branch of ?:"
            elif prev is not None and prev.value == ":":
                q = find_question(toks, a - 1)
                if q is not None and any(mentions_pg(t.value) for t in ternary_condition(toks, q)
                                         if t.kind == "ident"):
                    variant = "sqlite"
        if variant == "pg-dup":
            continue
        sites.append(Site(rel, line, func, text, variant, note))
    return sites, problems


# ---------------------------------------------------------------- synthesized statements

AUDIT_EVENT_COLS = ("e.seq, e.event_id, e.time_ms, e.actor_sub, e.actor_roles, e.client_addr, e.user_agent, e.action,"
                    " e.outcome, e.http_status, e.request_id, e.method, e.route, e.resource_kind, e.resource_branch,"
                    " e.resource_id, e.issue_keys, e.override_id, e.commit_id, e.before_hash, e.after_hash,"
                    " e.changed_paths, e.detail")


def audit_filter_sql(f):
    """Mirror of oms_store_audit_filter_sql (src/store/audit_sql.c), SQLite's text: the chained
    events through audit_facets, merged with the queued ones."""
    facet_cols = {"actor_sub", "action", "resource_branch", "request_id", "time_ms"}

    def terms(fc, key):
        out, n = [], 0

        def col(name):
            return (fc if name in facet_cols else "e.") + name

        def add(text):
            nonlocal n
            n += 1
            out.append(text % n)

        if f.get("actor"):
            add(col("actor_sub") + " = $%d")
        if f.get("action_prefix"):
            k = len(f["action_prefix"]) - 1
            add("substr(%s, 1, %d) = substr($%%d, 1, %d)" % (col("action"), k, k))
        elif f.get("action"):
            add(col("action") + " = $%d")
        for name, key_ in (("resource_kind", "kind"), ("resource_id", "id"), ("resource_branch", "branch"),
                           ("outcome", "outcome"), ("request_id", "request"), ("commit_id", "commit")):
            if f.get(key_):
                add(col(name) + " = $%d")
        if f.get("from"):
            add(col("time_ms") + " >= $%d")
        if f.get("to"):
            add(col("time_ms") + " < $%d")
        if f.get("cursor"):
            add(key + (" > $%d" if f.get("asc") else " < $%d"))
        return out, n

    first, n = terms("f.", "f.seq")
    second, _ = terms("e.", "q.seq")
    after_seq = AUDIT_EVENT_COLS[len("e.seq"):]
    d = "ASC" if f.get("asc") else "DESC"
    sql = "SELECT * FROM (SELECT f.seq" + after_seq + ", c.prev_hash, c.hash FROM audit_facets f CROSS JOIN" \
          " audit_events e ON e.seq = f.seq LEFT JOIN audit_chain c ON c.event_seq = e.seq"
    if first:
        sql += " WHERE " + " AND ".join(first)
    sql += " ORDER BY f.seq %s LIMIT $%d) a" % (d, n + 1)
    sql += " UNION ALL SELECT * FROM (SELECT q.seq" + after_seq + ", CAST(NULL AS TEXT), CAST(NULL AS TEXT)" \
           " FROM audit_unchained q CROSS JOIN audit_events e ON e.seq = q.seq WHERE (SELECT x.seq FROM" \
           " audit_facets x WHERE x.seq = q.seq) IS NULL"
    sql += "".join(" AND " + t for t in second)
    sql += " ORDER BY q.seq %s LIMIT $%d) b ORDER BY 1 %s LIMIT $%d" % (d, n + 1, d, n + 1)
    return sql


AUDIT_FILTERS = [
    ("no filter", {}),
    ("actor", {"actor": 1}),
    ("action", {"action": 1}),
    ("action prefix auth.*", {"action_prefix": "auth.*"}),
    ("branch", {"branch": 1}),
    ("resource kind+id", {"kind": 1, "id": 1}),
    ("resource kind", {"kind": 1}),
    ("outcome", {"outcome": 1}),
    ("request id", {"request": 1}),
    ("commit id", {"commit": 1}),
    ("time range", {"from": 1, "to": 1}),
    ("actor, cursor", {"actor": 1, "cursor": 1}),
    ("action, time range", {"action": 1, "from": 1, "to": 1}),
    ("cursor, ascending", {"cursor": 1, "asc": 1}),
]


def synthesized(root):
    path = os.path.join(root, "src/store/audit_sql.c")
    line = 0
    with open(path, encoding="utf-8") as f:
        for k, l in enumerate(f, 1):
            if l.startswith("void oms_store_audit_filter_sql"):
                line = k
    return [Site("src/store/audit_sql.c", line, "oms_store_audit_filter_sql", audit_filter_sql(flt), "both",
                 "synthesized: " + label) for label, flt in AUDIT_FILTERS]


# ---------------------------------------------------------------- the database

def sha(*parts):
    return hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()


def unhex(v):
    try:
        return bytes.fromhex(v) if isinstance(v, str) else None
    except ValueError:
        return None


def build_db(path, root, ddl, scale):
    db = sqlite3.connect(path, isolation_level=None)
    # the connection settings of src/store/db_sqlite.c (foreign keys matter:
    # their checks are part of a write's plan)
    db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA foreign_keys=ON;"
                     " PRAGMA temp_store=MEMORY;")
    db.create_function("oms_unhex", 1, unhex, deterministic=True)
    mig = os.path.join(root, "src/store/migrations")
    files = sorted((f for f in os.listdir(mig) if f.endswith(".sqlite.sql")), key=lambda f: int(f.split("_")[0]))
    for f in files:
        with open(os.path.join(mig, f), encoding="utf-8") as fh:
            db.executescript(fh.read())
    for stmt in ddl:
        db.executescript(stmt)
    db.execute("BEGIN")
    fill(db, scale, len(files))
    db.execute("COMMIT")
    return db


def fill(db, scale, nmig):
    rnd = random.Random(21)
    S = lambda n: max(1, int(n * scale))  # noqa: E731
    x = db.executemany
    root = db.execute("SELECT id, generation FROM commits").fetchone()[0]
    t0 = 1_700_000_000_000
    resources = ["%s/Thing%d" % (rnd.choice(["object_type", "link_type", "action_type", "interface"]), k)
                 for k in range(S(600))]
    users = ["user%d" % k for k in range(40)]
    commits, parents, issues, changes, objects, trees, nodes = [], [], [], [], {}, [], []
    gen = {root: 1}
    main = [root]

    def commit(first, second, n):
        cid = sha("commit", n)
        g = 1 + max(gen[first], gen.get(second, 0))
        gen[cid] = g
        keys = ["OMS-%d" % rnd.randrange(1, S(400)) for _ in range(rnd.choice([0, 1, 1, 2]))]
        tree = sha("tree", n)
        plist = [first] + ([second] if second else [])
        commits.append((cid, tree, first, json.dumps(plist), rnd.choice(users), "change %d" % n, t0 + n * 60000,
                        json.dumps(keys), None, g))
        for k, p in enumerate(plist):
            parents.append((cid, k, p))
        for key in set(keys):
            issues.append((key, cid))
        for r in rnd.sample(resources, rnd.randint(1, 4)):
            h = sha("doc", r, n)
            objects[h] = (h, "resource", json.dumps({"apiName": r, "n": n}))
            changes.append((cid, r, rnd.choice(["added", "modified", "modified", "removed"]), sha("old", r, n), h))
        trees.append((tree, bytes.fromhex(sha("node", n, 0))))
        for k in range(3):
            body = bytes([0, k % 2]) + rnd.randbytes(62)
            nodes.append((bytes.fromhex(sha("node", n, k)), body))
        return cid

    n = 0
    branch_heads = {}
    for step in range(S(4000)):
        n += 1
        if step % 50 == 49:  # a feature line merged back
            side = main[-1]
            for _ in range(4):
                n += 1
                side = commit(side, None, n)
            branch_heads["feature-%d" % step] = side
            n += 1
            main.append(commit(main[-1], side, n))
        else:
            main.append(commit(main[-1], None, n))
    x("INSERT INTO commits VALUES (?,?,?,?,?,?,?,?,?,?)", commits)
    x("INSERT INTO commit_parents VALUES (?,?,?)", parents)
    x("INSERT OR IGNORE INTO commit_issues VALUES (?,?)", issues)
    x("INSERT OR IGNORE INTO commit_changes VALUES (?,?,?,?,?)", changes)
    x("INSERT OR IGNORE INTO objects VALUES (?,?,?)", list(objects.values()))
    x("INSERT OR IGNORE INTO trees VALUES (?,?)", trees)
    x("INSERT OR IGNORE INTO tree_nodes VALUES (?,?)", nodes)
    head = main[-1]
    db.execute("UPDATE branches SET head = ? WHERE name = 'main'", (head,))
    branches = ["main"] + sorted(branch_heads)[:30]
    x("INSERT INTO branches (name, head, created_at, created_by, updated_at) VALUES (?,?,?,?,?)",
      [(b, branch_heads[b], t0, "user1", t0) for b in branches[1:]])
    docs = sorted(objects.values())
    br = []
    for b in branches[:11]:
        for k, r in enumerate(resources):
            br.append((b, r, docs[k % len(docs)][0], head, "user1", t0))
    x("INSERT INTO branch_resources VALUES (?,?,?,?,?,?)", br)
    x("INSERT INTO tags VALUES (?,?,?,?,?)", [("v%d" % k, main[k * 37 % len(main)], "", t0, "user1")
                                              for k in range(S(100))])
    # proposals and their reviews
    props, reviews, comments, reviewers = [], [], [], []
    for k in range(S(1500)):
        pid = "pr_" + sha("pr", k)[:32]
        state = "open" if k % 30 == 0 else "draft" if k % 97 == 0 else rnd.choice(["merged", "merged", "closed"])
        src = branches[1 + k % (len(branches) - 1)] if len(branches) > 1 else "main"
        props.append((pid, src, "main", "title %d" % k, "desc", state, rnd.choice(users), "[]", t0 + k, t0 + k,
                      main[k % len(main)] if state == "merged" else None, None))
        for j in range(2):
            reviews.append((pid, users[(k + j) % 40], rnd.choice(["approved", "rejected", "changes_requested"]),
                            sha("head", k, j), t0 + k + j, None))
            comments.append((pid, j + 1, "cmt_" + sha("c", k, j)[:32], users[j], "body", None, None, None,
                             sha("head", k, j), t0 + k + j))
        reviewers.append((pid, users[k % 40], "user1", t0 + k))
    x("INSERT INTO proposals VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", props)
    x("INSERT INTO proposal_reviews (proposal_id, reviewer, verdict, source_head, created_at, comment)"
      " VALUES (?,?,?,?,?,?)", reviews)
    x("INSERT INTO proposal_comments VALUES (?,?,?,?,?,?,?,?,?,?)", comments)
    x("INSERT INTO proposal_reviewers VALUES (?,?,?,?)", reviewers)
    # governance
    x("INSERT INTO overrides VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
      [("ovr_%d" % k, "issue_requirement", "main", None, "why", "INC-%d" % k, "user2",
        rnd.choice(["used", "expired", "rejected"]) if k > 3 else "pending", 3600, 1, t0 + k, t0 + k + 3600000,
        None, None, None, None) for k in range(S(300))])
    x("INSERT INTO override_approvals VALUES (?,?,?)", [("ovr_%d" % k, "user3", t0 + k) for k in range(S(300))])
    x("INSERT INTO alerts VALUES (?,?,?,?,?,?,?,?,?)",
      [("alr_%d" % k, t0 + k * 1000, "auth_failures", "warning", "user1", "10.0.0.1", "req", "{}", 1)
       for k in range(S(2000))])
    x("INSERT INTO acl_policies VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
      [("acl_%d" % k, "role:r%d" % k, "allow", '["read"]', "[]", "", 1, "etag", t0 + k, "user1", t0, "user1")
       for k in range(30)])
    # lock history
    nlocks = S(5000)
    x("INSERT INTO locks (id, branch, scope, resource_type, resource_id, kind, holder, reason, acquired_at,"
      " expires_at, heartbeat_seconds, last_heartbeat_at, deadline_at, fencing_token, state, ended_at, ended_by)"
      " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
      [("lck_%032x" % k, branches[k % len(branches)], "resource", "object_type", "Thing%d" % k, "manual",
        users[k % 40], "r", t0 + k, t0 + k + 60000, 0, t0 + k,
        (t0 + k + 60000) if k < nlocks - 5 else 9_000_000_000_000, k + 1,
        rnd.choice(["released", "expired", "force_released"]) if k < nlocks - 5 else "active",
        t0 + k + 1000 if k < nlocks - 5 else None, None) for k in range(nlocks)])
    db.execute("UPDATE lock_fencing SET value = ?", (nlocks,))
    # the audit log, chained but for a tail
    actions = ["resource.update", "resource.create", "auth.failed", "authz.denied", "proposal.approve",
               "branch.merge", "lock.acquire", "lock.release", "proposal.merge", "object_type.update", "read"]
    nev = S(20000)
    x("INSERT INTO audit_events (seq, event_id, time_ms, actor_sub, actor_roles, client_addr, user_agent, action,"
      " outcome, http_status, request_id, method, route, resource_kind, resource_branch, resource_id, issue_keys,"
      " override_id, commit_id, before_hash, after_hash, changed_paths, detail)"
      " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
      [(k, "evt_%032x" % k, t0 + k * 500, users[k % 40], '["editor"]', "10.0.0.%d" % (k % 250), "ua",
        actions[k % len(actions)], "success" if k % 7 else "denied", 200, "req-%d" % k, "PUT", "/x",
        "object_type", branches[k % len(branches)], "Thing%d" % (k % 600), '["OMS-1"]', None,
        main[k % len(main)], None, None, "[]", "{}") for k in range(1, nev + 1)])
    chained = nev - S(1000)
    x("INSERT INTO audit_chain VALUES (?,?,?,?)", [(k, k, sha("h", k - 1), sha("h", k)) for k in range(1, chained + 1)])
    x("INSERT INTO audit_unchained VALUES (?)", [(k,) for k in range(chained + 1, nev + 1)])
    x("INSERT INTO audit_facets SELECT seq, time_ms, actor_sub, action, resource_branch, request_id"
      " FROM audit_events WHERE seq <= ?", [(chained,)])
    x("INSERT INTO audit_checkpoints VALUES (?,?,?,?,?,?,?,?,?,?,?)",
      [(k, "seal", (k - 1) * 100 + 1, k * 100, sha("h", k * 100), 100, t0 + k, "oms", None, "p", "h")
       for k in range(1, chained // 100 + 1)])
    # the outbox and webhooks
    nevents = S(20000)
    x("INSERT INTO events (seq, pos, id, type, branch, time_ms, body) VALUES (?,?,?,?,?,?,?)",
      [(k, k, "ev_%d" % k, "oms.resource.updated", "main", t0 + k * 500, "{}") for k in range(1, nevents + 1)])
    x("INSERT INTO webhooks (id, url, secret, types, branches, enabled, cursor_pos, created_at, created_by,"
      " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
      [("wh_%d" % k, "http://h/%d" % k, "s", "[]", "[]", 1, nevents - k, t0, "user1", t0) for k in range(5)])
    x("INSERT INTO webhook_deliveries VALUES (?,?,?,?,?,?,?,?,?,?,?)",
      [("dlv_%d" % k, "wh_%d" % (k % 5), "ev_%d" % (k // 5 + 1), k // 5 + 1,
        "delivered" if k < S(15000) - 20 else "pending", 1, t0, 200, None, t0 + k, t0 + k) for k in range(S(15000))])
    # search
    gens, docs_rows, g = [], [], 0
    for b in branches[:11]:
        g += 1
        gens.append((g, b, "active", None, head, t0, t0, None, 0))
    for _ in range(20):
        g += 1
        gens.append((g, "main", "retired", "idx_%d" % g, head, t0, t0, t0, 0))
    g += 1
    gens.append((g, "main", "building", "idx_b", head, t0, None, None, 1))
    x("INSERT INTO search_generations VALUES (?,?,?,?,?,?,?,?,?)", gens)
    for gid, b, state, *_ in gens[:11] + gens[11:13]:
        for r in (resources if b == "main" else resources[:100]):
            kind, name = r.split("/")
            docs_rows.append((gid, r, kind, name, name.lower(), sha(r), "g%d" % gid, name, name, "p", "d"))
    x("INSERT INTO search_docs (generation, resource, kind, api_name, api_norm, hash, gen, api, names, props, descr)"
      " VALUES (?,?,?,?,?,?,?,?,?,?,?)", docs_rows)
    x("INSERT INTO search_pending VALUES (?,?,?)", [(g, r, head) for r in resources[:50]])
    x("INSERT INTO index_jobs (id, branch, state, phase, generation, commit_id, lock_id, requested_by, instance,"
      " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
      [("idx_%d" % k, "main", "succeeded" if k else "running", "done" if k else "build", k + 1, head,
        "lck_%032x" % k, "user1", "i1", t0 + k, t0 + k) for k in range(S(60))])
    x("INSERT OR IGNORE INTO schema_migrations (version, name, applied_at) VALUES (?,?,?)",
      [(v, "m%d" % v, t0) for v in range(1, nmig // 2 + 1)])


# ---------------------------------------------------------------- plans

HISTORY_BOUNDED = {"branches", "acl_version", "lock_fencing", "audit_chain_head", "webhooks", "schema_migrations",
                   "acl_policies", "search_generations", "sqlite_master", "sqlite_schema"}
SIZE_OF_ONTOLOGY = {"branch_resources"}
KEYWORDS = {"ON", "WHERE", "JOIN", "LEFT", "INNER", "CROSS", "NATURAL", "USING", "SET", "GROUP", "ORDER", "LIMIT",
            "UNION", "EXCEPT", "INTERSECT", "VALUES", "SELECT", "AS", "DEFAULT", "RETURNING", "WINDOW", "HAVING",
            "INDEXED", "NOT", "OUTER", "FULL", "RIGHT"}


def placeholders(sql):
    """$N -> ?N outside quoted strings and identifiers."""
    out, i, n = [], 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i:j + 1])
            i = j + 1
            continue
        m = re.match(r"\$(\d+)", sql[i:])
        if m:
            out.append("?" + m.group(1))
            i += len(m.group(0))
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def split_statements(sql):
    parts, cur = [], ""
    for piece in re.split(r"(;)", sql):
        cur += piece
        if piece == ";" and sqlite3.complete_statement(cur):
            if cur.strip(" ;\n"):
                parts.append(cur.strip())
            cur = ""
    if cur.strip():
        parts.append(cur.strip())
    return parts


def aliases(sql, tables):
    """name seen in a plan -> the real tables it may stand for."""
    found = {}
    words = re.findall(r"[A-Za-z_][A-Za-z_0-9]*|\(|\)|,", sql)
    for k, w in enumerate(words):
        if w.lower() not in tables:
            continue
        prev = words[k - 1].upper() if k else ""
        if prev not in ("FROM", "JOIN", ",", "UPDATE", "INTO", "USING"):
            continue
        found.setdefault(w.lower(), set()).add(w.lower())
        nxt = words[k + 1] if k + 1 < len(words) else ""
        if nxt.upper() == "AS" and k + 2 < len(words):
            nxt = words[k + 2]
        if nxt and nxt not in "(),"and nxt.upper() not in KEYWORDS:
            found.setdefault(nxt, set()).add(w.lower())
    return found


def ctes(sql):
    names = set(re.findall(r"(?:\bWITH(?:\s+RECURSIVE)?|,)\s*([A-Za-z_]\w*)\s*(?:\([^()]*\))?\s+AS\s*(?:NOT\s+)?"
                           r"(?:MATERIALIZED\s*)?\(", sql, re.I))
    return names


def size_class(table):
    if table in HISTORY_BOUNDED:
        return "bounded"
    if table in SIZE_OF_ONTOLOGY:
        return "ontology-size"
    return "HISTORY"


def flag_plan(rows, sql, tables, partial):
    al = aliases(sql, tables)
    cte = ctes(sql)
    flags = []
    sorts = any("TEMP B-TREE" in r[3] for r in rows)
    limited = re.search(r"\bLIMIT\b", sql, re.I) is not None
    for _id, _parent, _u, detail in rows:
        m = re.match(r"SCAN (\S+)(.*)$", detail)
        if m:
            name, rest = m.group(1), m.group(2)
            if name == "CONSTANT" or "VIRTUAL TABLE" in rest or name.startswith("("):
                continue
            real = al.get(name) or ({name.lower()} if name.lower() in tables else set())
            if not real or (name in cte and name not in al):
                continue
            classes = "/".join(sorted({size_class(t) for t in real}))
            idx = re.search(r"USING (?:COVERING )?INDEX (\S+)", rest)
            if idx and idx.group(1) in partial:
                classes += "; partial index: reads only its rows"
            elif limited and not sorts and not re.search(r"count\(|max\(|min\(|sum\(", sql, re.I):
                classes += ("; no WHERE: reads LIMIT rows" if not re.search(r"\bWHERE\b", sql, re.I) else
                            "; in LIMIT order: stops at LIMIT matches, worst case whole table")
            flags.append(("SCAN", detail, "/".join(sorted(real)), classes))
            continue
        m = re.match(r"SEARCH (\S+) USING (?:(?:COVERING |PRIMARY KEY )?INDEX \S+ |INTEGER PRIMARY KEY )?"
                     r"\((\w+)([<>])\?\)$", detail)
        if m and "AUTOMATIC" not in detail:
            name = m.group(1)
            real = al.get(name) or ({name.lower()} if name.lower() in tables else set())
            idx = re.search(r"INDEX (\S+) \(", detail)
            if (real and not (name in cte and name not in al) and any(size_class(t) == "HISTORY" for t in real)
                    and not (idx and idx.group(1) in partial)):
                flags.append(("RANGE", detail, "/".join(sorted(real)),
                              "HISTORY; open-ended range on %s: every row past the cursor/bound is read" % m.group(2)
                              + ("" if limited else ", no LIMIT")))
            continue
        if "AUTOMATIC" in detail:
            m = re.match(r"(?:SEARCH|SCAN) (\S+)", detail)
            name = m.group(1) if m else "?"
            real = al.get(name) or ({name.lower()} if name.lower() in tables else set())
            flags.append(("AUTO", detail, "/".join(sorted(real)) or name + " (CTE/subquery)",
                          "/".join(sorted({size_class(t) for t in real})) or "in-memory"))
        elif "USE TEMP B-TREE" in detail:
            flags.append(("TEMP", detail, "", ""))
    return flags


# ---------------------------------------------------------------- --check

CHECK_SCALE = 0.05


def offending(flags):
    """The flags --check fails on: a SCAN (of the table or through an index,
    covering or not) of a table that grows with history, but for a scan of a
    partial index (it reads only that index's rows) and a LIMIT read with no
    WHERE and no sort (it reads LIMIT rows) -- the report's "Full scans"
    group -- and an AUTOMATIC index on such a table. Open-ended range reads
    (~), temp B-trees and scans of bounded tables or of CTEs do not fail."""
    out = []
    for kind, detail, table, cls in flags:
        if kind == "SCAN" and "HISTORY" in cls and "partial index" not in cls and "no WHERE" not in cls:
            out.append((detail, table))
        elif kind == "AUTO" and "HISTORY" in cls:
            out.append((detail, table))
    return out


def read_allowlist(path):
    """({(file.c, function): tables or None}, {key: line number}, [errors]).
    A line is `file.c function [table,...]  # reason`: with tables, only
    scans of those tables are allowed (so that a bounded-queue entry does not
    also excuse a scan of the table the queue indexes)."""
    entries, where, errors = {}, {}, []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        return entries, where, ["cannot read the allowlist %s: %s" % (path, e)]
    for n, raw in enumerate(lines, 1):
        body, _, reason = raw.partition("#")
        fields = body.split()
        if not fields:
            continue
        if (len(fields) not in (2, 3) or not fields[0].endswith(".c") or not re.fullmatch(r"[A-Za-z_]\w*", fields[1])
                or (len(fields) == 3 and not re.fullmatch(r"\w+(,\w+)*", fields[2]))):
            errors.append("%s:%d: not `file.c function [table,...]  # reason`: %s" % (shown(path), n, raw.strip()))
            continue
        if not reason.strip():
            errors.append("%s:%d: %s %s has no reason (`# why this may scan`)" % (shown(path), n, fields[0], fields[1]))
            continue
        key = (os.path.basename(fields[0]), fields[1])
        if key in entries:
            errors.append("%s:%d: %s %s is listed twice (line %d)" % (shown(path), n, key[0], key[1], where[key]))
            continue
        entries[key] = set(fields[2].lower().split(",")) if len(fields) == 3 else None
        where[key] = n
    return entries, where, errors


def shown(path):
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def check(allow_path, sites, problems, failed, checked, explained):
    """Exit status of --check: 1 when a statement outside the allowlist
    offends, cannot be extracted or explained, or when the allowlist is
    malformed or names a function of src/store/*.c with no SQL (stale)."""
    allow, where, errors = read_allowlist(allow_path)
    used = set()
    known = {(os.path.basename(s.file), s.func) for s in sites} | {(os.path.basename(p[0]), p[2]) for p in problems}
    synthesized_for = {(os.path.basename(s.file), s.func) for s in sites if s.note.startswith("synthesized")}
    fails = []

    def allowed(file, func, table=None):
        """table: the scanned table(s), "a/b"; None for a statement that
        cannot be checked (only an entry without tables allows it)."""
        key = (os.path.basename(file), func)
        if key not in allow:
            return False
        only = allow[key]
        if only is not None and (table is None or not set(table.split("/")) <= only):
            return False
        used.add(key)
        return True

    seen = set()
    for s, stmt, flags in checked:
        for detail, table in offending(flags):
            if allowed(s.file, s.func, table) or (s.file, s.line, s.note, detail) in seen:
                continue
            seen.add((s.file, s.line, s.note, detail))
            fails.append("%s:%d %s()%s: %s [%s]\n    sql: %s" % (
                s.file, s.line, s.func or "?", " [%s]" % s.note if s.note else "", detail, table,
                stmt if len(stmt) <= 200 else stmt[:197] + "..."))
    for s, why in failed:
        if not allowed(s.file, s.func):
            fails.append("%s:%d %s(): not explained on SQLite: %s\n    sql: %s" % (
                s.file, s.line, s.func or "?", why, s.sql[:200]))
    for rel, line, func, why, text in problems:
        # the audit filter is composed at run time and mirrored by audit_filter_sql
        if (os.path.basename(rel), func) in synthesized_for:
            continue
        if not allowed(rel, func):
            fails.append("%s:%d %s(): not extracted: %s\n    text: %s" % (rel, line, func or "?", why, text[:160]))
    stale = sorted(k for k in allow if k not in known)
    for k in stale:
        errors.append("%s:%d: stale entry: %s %s(): no SQL statement of that function in src/store/%s"
                      " (renamed or removed? then remove or rename the entry)"
                      % (shown(allow_path), where[k], k[0], k[1], k[0]))
    unused = sorted(k for k in allow if k in known and k not in used)

    print("sql plan check (SQLite %s): %d statements explained, allowlist %s: %d entries"
          % (sqlite3.sqlite_version, explained, shown(allow_path), len(allow)))
    for f in fails:
        print("FAIL " + f)
    for e in errors:
        print("FAIL " + e)
    for k in unused:  # a warning only: plans differ between SQLite versions
        print("note: %s:%d: %s %s() allows nothing on this SQLite (fixed? then remove the entry)"
              % (shown(allow_path), where[k], k[0], k[1]))
    if fails or errors:
        print("sql plan check: FAILED: %d statement(s) scan a history table, use an automatic index on one or"
              " cannot be checked, outside the allowlist; %d allowlist problem(s). A scan that is meant (a bounded"
              " or maintenance path) goes into %s with its reason." % (len(fails), len(errors),
                                                                       shown(allow_path)))
        return 1
    print("sql plan check: ok (%d allowlisted function(s) used)" % len(used))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--scale", type=float, help="synthetic row counts multiplier (default 1; %g with --check:"
                    " without ANALYZE the plans do not depend on the rows)" % CHECK_SCALE)
    ap.add_argument("--all", action="store_true", help="print every plan, not only the flagged lines")
    ap.add_argument("--full-sql", action="store_true", help="print whole statements, not their first 240 characters")
    ap.add_argument("--keep-db", metavar="PATH", help="build the database at PATH and keep it")
    ap.add_argument("--check", action="store_true", help="regression check: exit 1 on a history-table scan or"
                    " automatic index, or a statement not extracted/explained, outside the allowlist")
    ap.add_argument("--allow", metavar="FILE", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                    "sql-plan-allow.txt"),
                    help="the --check allowlist (default: sql-plan-allow.txt next to this script)")
    args = ap.parse_args()
    if args.scale is None:
        args.scale = CHECK_SCALE if args.check else 1.0
    root = os.path.abspath(args.root)
    store = os.path.join(root, "src/store")
    base = header_macros(store)
    sites, problems = [], []
    for name in sorted(os.listdir(store)):
        if name.endswith(".c"):
            s, p = extract(os.path.join(store, name), "src/store/" + name, base)
            sites.extend(s)
            problems.extend(p)
    sites.extend(synthesized(root))

    ddl = [s.sql for s in sites if s.variant != "pg" and re.match(r"\s*CREATE (TABLE|INDEX) IF NOT EXISTS", s.sql)]
    tmpdir = None
    if args.keep_db:
        dbpath = args.keep_db
        if os.path.exists(dbpath):
            os.remove(dbpath)
    else:
        tmpdir = tempfile.TemporaryDirectory(prefix="sql-plan-audit-")
        dbpath = os.path.join(tmpdir.name, "audit.db")
    try:
        db = build_db(dbpath, root, ddl, args.scale)
    except sqlite3.Error as e:
        print("cannot build the database: %s" % e)
        return 1 if args.check else 0
    tables = {r[0].lower() for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
              if not re.search(r"_(data|idx|content|docsize|config)$", r[0])}
    partial = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'")}
    counts = {t: db.execute('SELECT count(*) FROM "%s"' % t).fetchone()[0] for t in sorted(tables)}

    explained, failed, pg_only, flagged_groups = 0, [], [], {}
    plans, checked = {}, []
    for s in sites:
        if s.variant == "pg":
            pg_only.append((s, s.note or "second of a {sqlite, pg} pair"))
            continue
        for stmt in split_statements(s.sql):
            sql = placeholders(stmt)
            nparams = max([int(v) for v in re.findall(r"\?(\d+)", sql)] or [0])
            try:
                rows = db.execute("EXPLAIN QUERY PLAN " + sql, (None,) * nparams).fetchall()
            except sqlite3.Error as e:
                if PG_MARKERS.search(stmt):
                    pg_only.append((s, "PostgreSQL syntax (%s); SQLite says: %s" % (
                        PG_MARKERS.search(stmt).group(0), e)))
                else:
                    failed.append((s, str(e)))
                continue
            explained += 1
            flags = flag_plan(rows, stmt, tables, partial)
            plans.setdefault(stmt, []).append(s)
            checked.append((s, stmt, flags))
            if args.all or flags:
                flagged_groups.setdefault(stmt, (flags, rows, []))[2].append(s)

    if args.check:
        rc = check(args.allow, sites, problems, failed, checked, explained)
        db.close()
        if tmpdir:
            tmpdir.cleanup()
        return rc

    def loc(s):
        return "%s:%d %s()%s" % (s.file, s.line, s.func or "?", " [%s]" % s.note if s.note else "")

    print("SQL plan audit (SQLite %s), database: %s" % (sqlite3.sqlite_version, dbpath if args.keep_db else
                                                        "temporary"))
    print("rows: " + ", ".join("%s %d" % (t, n) for t, n in counts.items() if n))
    print()
    hist = [(k, v) for k, v in flagged_groups.items()
            if any(f[0] == "SCAN" and "HISTORY" in f[3] and "partial index" not in f[3] and "no WHERE" not in f[3]
                   for f in v[0])]
    ranged = [(k, v) for k, v in flagged_groups.items()
              if (k, v) not in hist and any(f[0] == "RANGE" for f in v[0])]
    other = [(k, v) for k, v in flagged_groups.items() if (k, v) not in hist and (k, v) not in ranged]
    for title, group in (("Full scans (!!) of tables that grow with history", hist),
                         ("Open-ended range reads (~) of history tables: O(LIMIT) for plain keyset paging, but every"
                          " row past the bound when other filters reject rows or there is no LIMIT", ranged),
                         ("Other flagged plans (scans of bounded/ontology-size tables, of partial indexes, LIMIT-only reads;"
                          " temp B-trees; automatic indexes)"
                          if not args.all else "Every other plan", other)):
        print("== %s: %d statement(s)" % (title, len(group)))
        for stmt, (flags, rows, ss) in sorted(group, key=lambda kv: (kv[1][2][0].file, kv[1][2][0].line)):
            print("-- " + "\n   ".join(loc(s) for s in ss))
            print("   sql: %s" % (stmt if len(stmt) <= 240 or args.full_sql else stmt[:237] + "..."))
            if args.all:
                for r in rows:
                    print("   | %s" % r[3])
            for kind, detail, table, cls in flags:
                extra = " (%s: %s)" % (table, cls) if table else ""
                print("   %s %s%s" % ({"SCAN": "!!", "AUTO": "!a", "TEMP": " t", "RANGE": " ~"}[kind], detail, extra))
        print()
    print("== Not explained on SQLite")
    for s, why in failed:
        print("   FAILED %s: %s\n          sql: %s" % (loc(s), why, s.sql[:200]))
    for rel, line, func, why, text in problems:
        print("   NOT EXTRACTED %s:%d %s(): %s\n          text: %s" % (rel, line, func or "?", why, text[:160]))
    print("   PostgreSQL-only texts skipped: %d" % len(pg_only))
    for s, why in pg_only:
        if not why.startswith("second of"):
            print("      %s: %s" % (loc(s), why[:160]))
    print()
    nsql = sum(1 for s in sites if s.variant != "pg")
    print("summary: %d statement sites extracted from src/store/*.c (+%d synthesized audit-filter variants):"
          " %d SQLite/both texts (%d distinct), %d PostgreSQL-only skipped; %d explained, %d failed,"
          " %d composed at run time or unresolved; %d distinct statements flagged (%d with a history-table scan,"
          " %d more with an open-ended range read)"
          % (len(sites) - len(AUDIT_FILTERS), len(AUDIT_FILTERS), nsql, len({s.sql for s in sites
                                                                               if s.variant != "pg"}),
             len(pg_only), explained, len(failed), len(problems), len(flagged_groups), len(hist), len(ranged)))
    db.close()
    if tmpdir:
        tmpdir.cleanup()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # the report never fails its caller; --check does
        import traceback
        traceback.print_exc()
        print("sql-plan-audit: internal error: %s" % e)
        sys.exit(1 if "--check" in sys.argv[1:] else 0)
