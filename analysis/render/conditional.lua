-- Quarto's conditional content for plain pandoc (the fallback renderer), with Quarto's semantics
-- (quarto-cli: filters/customnodes/content-hidden.lua and modules/format.lua):
--   divs, spans and code blocks of class .content-visible / .content-hidden, with the conditions
--   when-format, unless-format, when-meta, unless-meta, when-profile, unless-profile (all must hold);
--   no condition at all matches, so a bare .content-visible shows and a bare .content-hidden hides.
--   A shown div is replaced by its content; a shown span or code block stays, without those classes.
--   when-meta names a metadata key (dotted for nested keys) whose value must be boolean true.
--   Format names alias as Quarto aliases them: html (html*, epub*, slides), pdf / latex, epub, markdown.

local meta = {}

local function contains(list, value)
  for _, v in ipairs(list) do if v == value then return true end end
  return false
end

local HTML = {"html", "html4", "html5", "epub", "epub2", "epub3", "s5", "dzslides", "slidy", "slideous", "revealjs"}
local EPUB = {"epub", "epub2", "epub3"}
local MARKDOWN = {"markdown", "markdown_github", "markdown_mmd", "markdown_phpextra", "markdown_strict", "gfm",
                  "commonmark", "commonmark_x", "markua"}

local function is_format(name)
  if FORMAT == name then return true end
  if name == "latex" or name == "pdf" then return FORMAT == "latex" or FORMAT == "beamer" or FORMAT == "pdf" end
  if name == "odt" or name == "opendocument" then return FORMAT == "odt" or FORMAT == "opendocument" end
  if name:match("epub") then return contains(EPUB, FORMAT) end
  if name == "html" then return contains(HTML, FORMAT) end
  if name == "html:js" then return contains(HTML, FORMAT) and not contains(EPUB, FORMAT) end
  if name == "markdown" then return contains(MARKDOWN, FORMAT) end
  if name == "asciidoc" or name == "asciidoctor" then return FORMAT == "asciidoc" or FORMAT == "asciidoctor" end
  return false
end

local function meta_true(key)
  local value = meta
  for part in key:gmatch("[^.]+") do
    if type(value) ~= "table" then return false end
    value = value[part]
  end
  return value == true
end

local profiles = {}
for p in (os.getenv("QUARTO_PROFILE") or ""):gmatch("[^,]+") do profiles[#profiles + 1] = p end
local function in_profile(name) return contains(profiles, name) end

local TESTS = {  -- attribute, check, inverted
  {"when-meta", meta_true, false}, {"unless-meta", meta_true, true},
  {"when-format", is_format, false}, {"unless-format", is_format, true},
  {"when-profile", in_profile, false}, {"unless-profile", in_profile, true},
}

local function matches(attributes)
  local match = true
  for _, test in ipairs(TESTS) do
    local value = attributes[test[1]]
    if value ~= nil then match = match and (test[3] ~= test[2](value)) end
  end
  return match
end

local function visibility(el)
  if el.classes:includes("content-visible") then return matches(el.attributes) end
  if el.classes:includes("content-hidden") then return not matches(el.attributes) end
  return nil
end

local function clear(el)
  for _, key in ipairs({"when-format", "unless-format", "when-profile", "unless-profile"}) do
    el.attributes[key] = nil
  end
  el.classes = el.classes:filter(function(c) return c ~= "content-visible" and c ~= "content-hidden" end)
  return el
end

local function keep_or_drop(el)
  local visible = visibility(el)
  if visible == nil then return nil end
  if visible then return clear(el) end
  return {}
end

return {
  {Meta = function(m) meta = m end},
  {
    Div = function(el)
      local visible = visibility(el)
      if visible == nil then return nil end
      if visible then return el.content end
      return {}
    end,
    Span = keep_or_drop,
    CodeBlock = keep_or_drop,
  },
}
