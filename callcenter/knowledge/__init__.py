"""The knowledge base (知识库) seats answer 咨询 from on the call: articles with their lifecycle
(draft → reviewed → published → expired), versions, and search in Chinese (jieba, BM25, synonyms,
pinyin) over SQLite FTS5 or PostgreSQL full-text."""
