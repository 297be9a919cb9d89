/*
 * ESP32-C3 UART register block (ESP-IDF soc/esp32c3 uart_reg.h / uart_struct.h; summary in
 * shared/reference/esp32c3-peer.md section 2). Base = 0x60000000 + n * 0x10000. All accesses are
 * 32-bit: a narrower FIFO access turns into a read-modify-write that pops an RX byte.
 */
#ifndef PEER_ESP32C3_UART_H
#define PEER_ESP32C3_UART_H

#define UART_FIFO_REG          0x00u   /* RXFIFO_RD_BYTE [7:0]; read pops RX, write pushes TX */
#define UART_INT_RAW_REG       0x04u
#define UART_INT_ST_REG        0x08u   /* INT_RAW & INT_ENA */
#define UART_INT_ENA_REG       0x0Cu
#define UART_INT_CLR_REG       0x10u   /* write 1 to clear the raw bit */
#define UART_CLKDIV_REG        0x14u
#define UART_STATUS_REG        0x1Cu
#define UART_CONF0_REG         0x20u
#define UART_CONF1_REG         0x24u
#define UART_MEM_CONF_REG      0x60u
#define UART_CLK_CONF_REG      0x78u

/* INT_RAW / INT_ST / INT_ENA / INT_CLR bits */
#define UART_INT_RXFIFO_FULL   (1u << 0)
#define UART_INT_TXFIFO_EMPTY  (1u << 1)
#define UART_INT_PARITY_ERR    (1u << 2)
#define UART_INT_FRM_ERR       (1u << 3)
#define UART_INT_RXFIFO_OVF    (1u << 4)
#define UART_INT_BRK_DET       (1u << 7)
#define UART_INT_RXFIFO_TOUT   (1u << 8)
#define UART_INT_TX_DONE       (1u << 14)
#define UART_INT_ALL           0x0007FFFFu

/* CLKDIV */
#define UART_CLKDIV_S          0u
#define UART_CLKDIV_M          (0xFFFu << UART_CLKDIV_S)
#define UART_CLKDIV_FRAG_S     20u
#define UART_CLKDIV_FRAG_M     (0xFu << UART_CLKDIV_FRAG_S)

/* STATUS */
#define UART_STATUS_RXFIFO_CNT_S  0u
#define UART_STATUS_RXFIFO_CNT_M  (0x3FFu << UART_STATUS_RXFIFO_CNT_S)
#define UART_STATUS_TXFIFO_CNT_S  16u
#define UART_STATUS_TXFIFO_CNT_M  (0x3FFu << UART_STATUS_TXFIFO_CNT_S)

/* CONF0 */
#define UART_CONF0_PARITY_EN   (1u << 1)
#define UART_CONF0_BIT_NUM_S   2u
#define UART_CONF0_BIT_NUM_M   (3u << UART_CONF0_BIT_NUM_S)      /* 3 = 8 data bits */
#define UART_CONF0_STOP_BIT_NUM_S 4u
#define UART_CONF0_STOP_BIT_NUM_M (3u << UART_CONF0_STOP_BIT_NUM_S) /* 1 = 1 stop bit */
#define UART_CONF0_LOOPBACK    (1u << 14)
#define UART_CONF0_RXFIFO_RST  (1u << 17)
#define UART_CONF0_TXFIFO_RST  (1u << 18)
#define UART_CONF0_MEM_CLK_EN  (1u << 28)

/* CONF1 (C3 layout: 9-bit thresholds) */
#define UART_CONF1_RXFIFO_FULL_THRHD_S  0u
#define UART_CONF1_RXFIFO_FULL_THRHD_M  (0x1FFu << UART_CONF1_RXFIFO_FULL_THRHD_S)
#define UART_CONF1_TXFIFO_EMPTY_THRHD_S 9u
#define UART_CONF1_TXFIFO_EMPTY_THRHD_M (0x1FFu << UART_CONF1_TXFIFO_EMPTY_THRHD_S)
#define UART_CONF1_RX_TOUT_EN           (1u << 21)

/* MEM_CONF: the RX-timeout threshold (in bit times) lives here on the C3 */
#define UART_MEM_CONF_RX_TOUT_THRHD_S   16u
#define UART_MEM_CONF_RX_TOUT_THRHD_M   (0x3FFu << UART_MEM_CONF_RX_TOUT_THRHD_S)

/* CLK_CONF */
#define UART_CLK_CONF_SCLK_DIV_NUM_S    12u
#define UART_CLK_CONF_SCLK_DIV_NUM_M    (0xFFu << UART_CLK_CONF_SCLK_DIV_NUM_S)
#define UART_CLK_CONF_SCLK_SEL_S        20u
#define UART_CLK_CONF_SCLK_SEL_M        (3u << UART_CLK_CONF_SCLK_SEL_S)
#define UART_CLK_CONF_SCLK_SEL_APB      1u
#define UART_CLK_CONF_SCLK_EN           (1u << 22)
#define UART_CLK_CONF_TX_SCLK_EN        (1u << 24)
#define UART_CLK_CONF_RX_SCLK_EN        (1u << 25)

#define UART_HW_FIFO_LEN       128u

#endif
