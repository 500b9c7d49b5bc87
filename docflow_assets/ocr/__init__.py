"""OCR: page rasterisation, preprocessing and engines. No Dagster or Litestar imports."""
