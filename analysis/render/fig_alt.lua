-- Quarto's `fig-alt` for plain pandoc (the fallback renderer): a figure's alt text comes from its
-- fig-alt attribute (report.qmd's `#| fig-alt:` cell option) instead of repeating the caption.
function Image(img)
  local alt = img.attributes["fig-alt"]
  if alt == nil then return nil end
  img.attributes["fig-alt"] = nil
  img.caption = pandoc.Inlines(alt)
  return img
end
