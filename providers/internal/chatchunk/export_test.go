package chatchunk

import "github.com/tidwall/gjson"

func gjsonValid(data []byte) bool { return gjson.ValidBytes(data) }
