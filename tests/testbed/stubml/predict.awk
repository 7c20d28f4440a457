# The /predict logic of the stub ML server, run over the saved multipart request body.
# Input: the body; -v boundary=<multipart boundary> for multipart/form-data (what Immich sends), or
# -v urlencoded=1 for application/x-www-form-urlencoded (FastAPI's Form() accepts both).
# Output: line 1 the HTTP status, line 2 the JSON answer, then one "<task>/<modelName>" line per model.
# Like immich_ml: `entries` must be JSON {task: {type: {modelName, options?}}} -> else 422 "Invalid request
# format."; a request with neither `image` nor `text` -> 400; recognition without detection -> 400.

function skip_ws() {
    while (pos <= n && index(" \t\r\n", substr(s, pos, 1)))
        pos++
}

function parse_string(    out, c) {
    pos++
    out = ""
    while (pos <= n) {
        c = substr(s, pos, 1)
        if (c == "\"") {
            pos++
            return out
        }
        if (c == "\\") {
            out = out substr(s, pos, 2)
            pos += 2
            continue
        }
        out = out c
        pos++
    }
    bad = 1
    return ""
}

# Parses one JSON value at `pos` into kind[path], val[path] and keys[path] (the child keys, SUBSEP-joined).
function parse_value(path,    c, c2, key, start, i) {
    skip_ws()
    c = substr(s, pos, 1)
    if (c == "{" || c == "[") {
        kind[path] = (c == "{") ? "object" : "array"
        pos++
        skip_ws()
        if (substr(s, pos, 1) == (c == "{" ? "}" : "]")) {
            pos++
            return
        }
        for (i = 0; !bad; i++) {
            skip_ws()
            if (c == "[") {
                key = i
            } else {
                if (substr(s, pos, 1) != "\"") {
                    bad = 1
                    return
                }
                key = parse_string()
                skip_ws()
                if (substr(s, pos++, 1) != ":") {
                    bad = 1
                    return
                }
            }
            keys[path] = keys[path] SUBSEP key
            parse_value(path SUBSEP key)
            skip_ws()
            c2 = substr(s, pos++, 1)
            if (c2 == (c == "{" ? "}" : "]"))
                return
            if (c2 != ",")
                bad = 1
        }
        return
    }
    if (c == "\"") {
        kind[path] = "string"
        val[path] = parse_string()
        return
    }
    start = pos
    while (pos <= n && index("0123456789+-.eEtruefalsn", substr(s, pos, 1)))
        pos++
    if (pos == start)
        bad = 1
    kind[path] = "scalar"
}

function urldecode(text,    out, i, c) {
    gsub(/\+/, " ", text)
    out = ""
    for (i = 1; i <= length(text); i++) {
        c = substr(text, i, 1)
        if (c == "%" && i + 2 <= length(text)) {
            out = out sprintf("%c", hex_digit(substr(text, i + 1, 1)) * 16 + hex_digit(substr(text, i + 2, 1)))
            i += 2
        } else {
            out = out c
        }
    }
    return out
}

function hex_digit(c) {
    return index("0123456789ABCDEF", toupper(c)) - 1
}

# A deterministic 512-dim vector (the size of ViT-B-32 and buffalo_l embeddings); busybox awk has no sin().
function embedding(seed,    out, i) {
    out = "["
    for (i = 0; i < 512; i++)
        out = out (i ? "," : "") sprintf("%.5f", ((seed * 7919 + i * 104729) % 2001 - 1000) / 22600)
    return out "]"
}

function finish(status, answer) {
    print status
    print answer
    printf "%s", models
    exit
}

BEGIN {
    part = 0
}

urlencoded {
    form = form $0
    next
}

{
    sub(/\r$/, "")
}

boundary != "" && ($0 == "--" boundary || $0 == "--" boundary "--") {
    part++
    in_headers = 1
    next
}

in_headers && $0 == "" {
    in_headers = 0
    next
}

in_headers {
    if (match(tolower($0), /^content-disposition:.* name="[^"]*"/)) {
        field[part] = substr($0, RSTART, RLENGTH)
        sub(/.* name="/, "", field[part])
        sub(/"$/, "", field[part])
        present[field[part]] = 1
    }
    next
}

part && field[part] == "entries" {
    entries = entries (entries_lines++ ? "\n" : "") $0
}

END {
    pairs = split(form, pair, "&")
    for (i = 1; i <= pairs; i++) {
        eq = index(pair[i], "=")
        name = urldecode(eq ? substr(pair[i], 1, eq - 1) : pair[i])
        present[name] = 1
        if (name == "entries")
            entries = urldecode(substr(pair[i], eq + 1))
    }
    s = entries
    n = length(s)
    pos = 1
    if (!present["entries"])
        bad = 1
    else
        parse_value("")
    skip_ws()
    if (pos <= n || kind[""] != "object" || keys[""] == "")
        bad = 1
    count = split(substr(keys[""], 2), tasks, SUBSEP)
    for (t = 1; t <= count && !bad; t++) {
        task = tasks[t]
        if (task != "clip" && task != "facial-recognition" && task != "ocr" || kind[SUBSEP task] != "object") {
            bad = 1
            break
        }
        types = split(substr(keys[SUBSEP task], 2), names, SUBSEP)
        if (types == 0)
            bad = 1
        for (k = 1; k <= types; k++) {
            type = names[k]
            p = SUBSEP task SUBSEP type
            if (type !~ /^(visual|textual|detection|recognition)$/ || kind[p] != "object" || kind[p SUBSEP "modelName"] != "string" || val[p SUBSEP "modelName"] == "" || val[p SUBSEP "modelName"] ~ /\.\./) {
                bad = 1
                break
            }
            if (type == "recognition" && kind[SUBSEP task SUBSEP "detection"] != "object")
                dependency = task
            model[task] = val[p SUBSEP "modelName"]
        }
        if (!bad && index(models, task "/" model[task] "\n") == 0)
            models = models task "/" model[task] "\n"
    }
    if (bad) {
        models = ""
        finish(422, "{\"detail\":\"Invalid request format.\"}")
    }
    if (!present["image"] && !present["text"]) {
        models = ""
        finish(400, "{\"detail\":\"Either image or text must be provided\"}")
    }
    if (dependency != "") {
        models = ""
        finish(400, "{\"detail\":\"recognition in '" dependency "' needs detection\"}")
    }
    answer = ""
    for (t = 1; t <= count; t++) {
        task = tasks[t]
        if (task == "clip")
            result = "\"" embedding(length(model[task])) "\""
        else if (task == "facial-recognition")
            result = "[{\"boundingBox\":{\"x1\":120,\"y1\":80,\"x2\":260,\"y2\":250},\"embedding\":\"" embedding(7) "\",\"score\":0.98}]"
        else
            result = "{\"text\":[],\"box\":[],\"boxScore\":[],\"textScore\":[]}"
        answer = answer (t > 1 ? "," : "") "\"" task "\":" result
    }
    if (present["image"])
        answer = answer ",\"imageHeight\":480,\"imageWidth\":640"
    finish(200, "{" answer "}")
}
